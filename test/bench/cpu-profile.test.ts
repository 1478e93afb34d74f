/** The profile summary ranks functions by self time and leaves sleeping and idle time out. */
import { describe, expect, it } from 'vitest';
import { hottestFunctions, type CpuProfile } from '../../bench/profile/cpu-profile.ts';

const frame = (id: number, functionName: string, url: string) => ({ id, callFrame: { functionName, url, lineNumber: id } });

describe('hottestFunctions', () => {
  it('ranks by self time, as shares of the busy time', () => {
    const profile: CpuProfile = {
      nodes: [frame(1, '(idle)', ''), frame(2, 'persist', 'file:///x/storage/wal-storage.js'), frame(3, 'wait', 'file:///x/transport/ring.js'), frame(4, 'apply', 'file:///x/kv/state-machine.js')],
      samples: [1, 2, 2, 3, 4, 2, 1],
      timeDeltas: [100, 10, 10, 500, 10, 10, 100],
    };
    const hot = hottestFunctions(profile, 5);
    expect(hot.map((h) => h.name)).toEqual(['persist storage/wal-storage.js:3', 'apply kv/state-machine.js:5']);
    expect(hot[0]!.share).toBeCloseTo(0.75);
    expect(hottestFunctions(profile, 1)).toHaveLength(1);
  });
});
