// Proves that createCluster's options are checked before anything starts, from the one
// definition of each setting: defaults come from the settings schemas (core/settings.ts,
// runtime/settings.ts, cluster/options.ts); an unknown option, at the top or inside a group,
// and a bad value are INVALID_ARGUMENT errors that name the option; relations between settings
// are checked; and the simulator and the worker take the very same groups.
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { CLIENT_SETTINGS, createCluster } from '../../src/cluster/index.ts';
import { resolveOptions, type ClusterOptions } from '../../src/cluster/options.ts';
import { RAFT_SETTINGS, RaftNode, resolveRaftSettings } from '../../src/core/index.ts';
import { defaultSimOptions } from '../../src/sim/index.ts';
import { NODE_SETTINGS } from '../../src/runtime/index.ts';
import { MemoryStorage } from '../../src/storage/index.ts';

function refusal(f: () => unknown): RingraftError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(RingraftError);
    expect((error as RingraftError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    return error as RingraftError;
  }
  throw new Error('expected an INVALID_ARGUMENT refusal');
}

describe('cluster options', () => {
  it('fill every setting with the default of its one definition', () => {
    const r = resolveOptions({ seed: 7 });
    for (const [name, setting] of Object.entries(RAFT_SETTINGS)) expect(r.raft[name as keyof typeof r.raft], name).toBe(setting.default);
    for (const [name, setting] of Object.entries(NODE_SETTINGS)) expect(r.node[name as keyof typeof r.node], name).toBe(setting.default);
    for (const [name, setting] of Object.entries(CLIENT_SETTINGS)) expect(r.client[name as keyof typeof r.client], name).toBe(setting.default);
    expect(r).toMatchObject({ nodes: 3, seed: 7, ringBytes: 8 << 20, dataDir: undefined });
  });

  it('refuse an unknown option, naming it and its group', () => {
    expect(refusal(() => resolveOptions({ electionTicks: 10 } as ClusterOptions)).message).toMatch(/unknown option electionTicks/);
    expect(refusal(() => resolveOptions({ raft: { electionTicks: 10 } } as ClusterOptions)).message).toMatch(/unknown option raft\.electionTicks \(known: .*electionTimeoutTicks/);
    expect(refusal(() => resolveOptions({ node: { fsynk: 'none' } } as ClusterOptions)).message).toMatch(/unknown option node\.fsynk/);
    expect(refusal(() => resolveOptions({ client: { timeoutMs: 5 } } as ClusterOptions)).message).toMatch(/unknown option client\.timeoutMs/);
  });

  it('refuse a bad value, naming the option and what it must be', () => {
    expect(refusal(() => resolveOptions({ raft: { electionTimeoutTicks: 1 } })).message).toMatch(/raft\.electionTimeoutTicks must be an integer in \[2, /);
    expect(refusal(() => resolveOptions({ raft: { preVote: 'yes' as unknown as boolean } })).message).toMatch(/raft\.preVote must be true or false, got "yes"/);
    expect(refusal(() => resolveOptions({ node: { fsync: 'sometimes' as 'none' } })).message).toMatch(/node\.fsync must be one of 'always', 'none', got "sometimes"/);
    expect(refusal(() => resolveOptions({ node: { tickMs: 0.5 } })).message).toMatch(/node\.tickMs must be an integer/);
    expect(refusal(() => resolveOptions({ nodes: 16 })).message).toMatch(/nodes must be an integer in \[1, 15\], got 16/);
    expect(refusal(() => resolveOptions({ raft: [] as never })).message).toMatch(/raft must be an object, got an array/);
    expect(refusal(() => resolveOptions(null as never)).message).toMatch(/options must be an object/);
  });

  it('check how settings relate', () => {
    expect(refusal(() => resolveOptions({ raft: { electionTimeoutTicks: 5, heartbeatIntervalTicks: 5 } })).message).toMatch(
      /raft\.heartbeatIntervalTicks \(5\) must be less than raft\.electionTimeoutTicks \(5\)/,
    );
    expect(refusal(() => resolveOptions({ raft: { electionTimeoutTicks: 4, leaseMarginTicks: 4 } })).message).toMatch(/raft\.leaseMarginTicks/);
    expect(refusal(() => resolveOptions({ raft: { proposalBytesMax: 1024 } })).message).toMatch(/raft\.proposalBytesMax \(1024\) must be at least/);
    expect(refusal(() => resolveOptions({ ringBytes: 1 << 20, raft: { appendBytesMax: 4 << 20 } })).message).toMatch(/ringBytes 1048576 is too small/);
  });

  it('are refused before any thread starts', async () => {
    await expect(createCluster({ raft: { electionTimeoutTick: 3 } } as ClusterOptions)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });

  it('are the same groups the core and the simulator take', () => {
    // The core refuses what the cluster refuses, with the same words.
    expect(refusal(() => new RaftNode({ id: 1, storage: new MemoryStorage(), seed: 1, electionTicks: 10 } as never)).message).toMatch(/unknown option electionTicks/);
    expect(new RaftNode({ id: 1, storage: new MemoryStorage(), seed: 1, electionTimeoutTicks: 12 }).settings).toEqual(resolveRaftSettings({ electionTimeoutTicks: 12 }));
    // The simulator's options hold resolved groups, overridable setting by setting.
    const sim = defaultSimOptions(5, { raft: { checkQuorum: false }, node: { tickMs: 7 } });
    expect(sim.raft.checkQuorum).toBe(false);
    expect(sim.node.tickMs).toBe(7);
    expect(sim.raft.electionTimeoutTicks).toBe(defaultSimOptions(5).raft.electionTimeoutTicks);
    expect(() => defaultSimOptions(5, { raft: { nope: 1 } as never })).toThrow(/unknown option raft\.nope/);
  });
});
