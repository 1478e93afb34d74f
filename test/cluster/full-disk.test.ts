// A full disk, on a real (small, mounted) file system: a node that cannot write its log goes
// down with NO_SPACE in status(), callers get a typed error rather than a bare timeout,
// nothing acknowledged is lost, and once space is freed the nodes come back by themselves
// and the cluster serves again. A full disk at start is NO_SPACE naming the directory or the
// node. Needs root, to mount a tmpfs (the machines this suite runs on are root's).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, createCluster, RingraftError } from '../../src/index.ts';
import { afterTest, FAST, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

/** A tmpfs of `sizeMiB` mounted in a temporary directory, unmounted after the test. */
function smallDisk(sizeMiB: number): string {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and needs root');
  const dir = join(tempDir(), 'disk');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
  afterTest(() => void execFileSync('umount', ['-l', dir]));
  return dir;
}

/** Fills the file system at `dir` with a ballast file of `bytes`, leaving the rest free. */
function ballast(dir: string, bytes: number): string {
  const path = join(dir, 'ballast');
  writeFileSync(path, Buffer.alloc(bytes, 1));
  return path;
}

describe('a full disk', () => {
  it('takes nodes down with NO_SPACE, loses nothing acknowledged, and they come back once space is freed', async () => {
    const disk = smallDisk(16);
    const fill = ballast(disk, 11 << 20);
    const c = await start({ dataDir: join(disk, 'data') });
    const kv = c.client();
    const value = 'v'.repeat(16 << 10);
    const acked: string[] = [];
    // Write until the cluster stops making progress: a majority of nodes cannot write.
    let failure: unknown;
    const messages: string[] = [];
    for (let i = 0, failures = 0; i < 2_000 && failures < 3; i++) {
      try {
        await kv.put(`k${i}`, value, { timeoutMs: 2_000 });
        acked.push(`k${i}`);
        failures = 0;
      } catch (error) {
        failure = error;
        messages.push((error as Error).message);
        failures++;
      }
    }
    expect(failure).toBeInstanceOf(RingraftError);
    // The caller learns why, not only that time ran out (a call that times out while the
    // nodes are between two tries to restart finds none down, and says only that).
    expect(messages.some((m) => /no answer within \d+ ms; .*node \d down \(NO_SPACE: node \d: no space left/.test(m))).toBe(true);
    // Nodes that died for want of space say so while they are down. Each restarts by itself
    // with back-off (250 ms, doubling) and is up, its reason cleared, for the moment a start
    // takes (some 100 ms since nodes no longer wait a second to run), so the reasons are
    // gathered over a few back-off periods.
    const full = new Set<number>();
    for (let i = 0; i < 100 && full.size < 2; i++) {
      for (const n of (await c.status()).nodes) {
        if (n.errorCode !== ErrorCode.NO_SPACE) continue;
        full.add(n.id);
        expect(n.error).toMatch(new RegExp(`^node ${n.id}: no space left`));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(full.size).toBeGreaterThanOrEqual(2);

    rmSync(fill);
    // The nodes restart by themselves (with back-off) and the cluster serves again.
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await kv.put('after', 'space freed', { timeoutMs: 2_000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
    const values = await Promise.all(acked.map((k) => kv.get(k)));
    expect(values.filter((v) => v === undefined || v.length !== value.length)).toEqual([]);
    expect(new TextDecoder().decode((await kv.get('after'))!)).toBe('space freed');
  });

  it('at start is NO_SPACE naming the directory or the nodes', async () => {
    const disk = smallDisk(1);
    ballast(disk, (1 << 20) - 4096);
    let error: unknown;
    try {
      const c = await createCluster({ ...FAST, dataDir: join(disk, 'data') });
      await c.close();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RingraftError);
    const e = error as RingraftError;
    // Either the directory itself could not be set up, or no quorum of nodes could start,
    // each for want of space.
    if (e.code === ErrorCode.NO_QUORUM) expect(e.message).toMatch(/NO_SPACE: node 1: no space left/);
    else expect(e.code).toBe(ErrorCode.NO_SPACE);
    expect(e.message).toMatch(/no space left/);
  });
});
