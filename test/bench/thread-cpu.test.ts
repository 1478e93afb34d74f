/** The per-thread CPU readings the cluster benches report (bench/shared/thread-cpu.ts). */
import { describe, expect, it } from 'vitest';
import { cpuByRole, threadDeltas, threadTimes, totalNs, type ThreadTime } from '../../bench/shared/thread-cpu.ts';

const times = (entries: [number, string, number][]): Map<number, ThreadTime> => new Map(entries.map(([tid, name, ns]) => [tid, { name, ns }]));

describe('thread CPU', () => {
  it('reads this process: the main thread by name, its CPU growing with work', () => {
    const before = threadTimes();
    expect(before.get(process.pid)?.name).toBe('main');
    // Spin until the reading shows 20 ms of this thread's CPU, for 5 s at most (a starved
    // machine gives the thread a share of a core, never none).
    const until = performance.now() + 5_000;
    let used = 0;
    let x = 0;
    while (used < 20e6 && performance.now() < until) {
      for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
      used = threadDeltas(before, threadTimes()).get(process.pid)!.ns;
    }
    expect(x).toBeGreaterThan(0);
    expect(used).toBeGreaterThanOrEqual(20e6);
  });

  it('splits deltas by role per operation; threads started meanwhile count from zero, and the rest is everything else', () => {
    const before = times([[1, 'main', 1_000], [2, 'node', 5_000], [3, 'node', 0], [4, 'node', 100], [5, 'V8 worker', 0]]);
    const after = times([[1, 'main', 11_000], [2, 'node', 25_000], [3, 'node', 6_000], [4, 'node', 8_100], [5, 'V8 worker', 3_000], [6, 'new', 2_000]]);
    const deltas = threadDeltas(before, after);
    expect(totalNs(deltas)).toBe(10_000 + 20_000 + 6_000 + 8_000 + 3_000 + 2_000);
    const cpu = cpuByRole(deltas, { main: 1, leader: 2, followers: [3, 4] }, 10);
    expect(cpu).toEqual({ clientUs: 1, leaderUs: 2, followersUs: [0.6, 0.8], restUs: 0.5, totalUs: 4.9 });
    // No leader known: its thread counts in the rest.
    expect(cpuByRole(deltas, { main: 1, leader: undefined, followers: [3, 4] }, 10).restUs).toBeCloseTo(2.5);
  });

  it('counts a thread that hosts several nodes once: followers on the leader\'s thread, or on one counted already, add nothing', () => {
    const deltas = times([[1, 'main', 10_000], [2, 'node', 30_000], [3, 'node', 6_000], [5, 'V8 worker', 4_000]]);
    // Three nodes on one thread.
    expect(cpuByRole(deltas, { main: 1, leader: 2, followers: [2, 2] }, 10)).toEqual({ clientUs: 1, leaderUs: 3, followersUs: [], restUs: 1, totalUs: 5 });
    // Two followers sharing a thread of their own.
    expect(cpuByRole(deltas, { main: 1, leader: 2, followers: [3, 3] }, 10)).toEqual({ clientUs: 1, leaderUs: 3, followersUs: [0.6], restUs: 0.4, totalUs: 5 });
  });
});
