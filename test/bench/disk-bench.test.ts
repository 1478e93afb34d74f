// Proves that the disk benchmark's bare loop writes what it reports and cleans up after
// itself: a 20 ms loop of 64-record batches on a growing file leaves a file of exactly the
// reported bytes, holding the batch's records in order, and its temporary directory is gone
// afterwards, also when the caller's hook throws before the removal. No timing is asserted.

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDiskRecords, runDiskLoop, type DiskLoopOptions } from '../../bench/micro/disk.bench.ts';

describe('disk bench bare loop', () => {
  it('writes exactly the bytes it reports, in whole batches, and removes its temporary directory', () => {
    const parentDir = mkdtempSync(path.join(os.tmpdir(), 'ringraft-disk-test-'));
    try {
      const options: DiskLoopOptions = {
        variant: 'growing',
        recordBytes: 150,
        batchRecords: 64,
        timeMs: 20,
        fileBytesMax: 256 * 1024 * 1024,
        parentDir,
      };
      let fileBytes = -1;
      let contents: Buffer | undefined;
      const result = runDiskLoop({
        ...options,
        beforeRemove: (filePath) => {
          fileBytes = statSync(filePath).size;
          contents = readFileSync(filePath);
        },
      });

      expect(result.fsyncs).toBeGreaterThan(0);
      expect(result.records).toBe(result.fsyncs * 64);
      expect(result.bytesWritten).toBe(result.records * 150);
      expect(fileBytes).toBe(result.bytesWritten);
      const batch = Buffer.concat(makeDiskRecords(150, 64));
      expect(contents!.equals(Buffer.concat(Array.from({ length: result.fsyncs }, () => batch)))).toBe(true);

      expect(path.dirname(result.dir)).toBe(parentDir);
      expect(() => statSync(result.dir)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(readdirSync(parentDir)).toEqual([]);

      // The directory goes even when something fails between the loop and the removal.
      expect(() =>
        runDiskLoop({
          ...options,
          beforeRemove: () => {
            throw new Error('planted failure');
          },
        }),
      ).toThrow('planted failure');
      expect(readdirSync(parentDir)).toEqual([]);
    } finally {
      rmSync(parentDir, { recursive: true, force: true });
    }
  });
});
