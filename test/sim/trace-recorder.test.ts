// Proves a failing seed can be read from its report: the simulator records the core's trace
// events and its own (starts, crashes, cuts, client operations, the violation), keeps only the
// last of them for each node (a bounded ring, checked against every event of a real run), and
// a failing run (a planted bug, or the simulator itself throwing) returns each node's last
// events as lines; a passing run returns none.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RaftNode, type RaftConfig } from '../../src/core/index.ts';
import { plantBug } from '../../src/sim/planted-bugs.ts';
import { defaultSimOptions, runSimulation, type SimResult } from '../../src/sim/simulation.ts';
import { CLUSTER_WIDE, EventRing, type TraceRecord } from '../../src/sim/trace-recorder.ts';

/** The lines of one group of a report: those after `title:`, up to the next group. */
function group(lines: readonly string[], title: string): string[] {
  const start = lines.indexOf(`  ${title}:`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && /^ {2}\S/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

function firstFailing(bug: 'no-truncate', seedsMax: number): SimResult {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const r = runSimulation(defaultSimOptions(seed, plantBug(bug)));
    if (!r.ok) return r;
  }
  throw new Error(`no seed up to ${seedsMax} caught ${bug}`);
}

describe('EventRing', () => {
  it('keeps the last `capacity` items pushed, oldest first', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.integer(), { maxLength: 60 }), (capacity, items) => {
        const ring = new EventRing<number>(capacity);
        for (const x of items) ring.push(x);
        expect(ring.toArray()).toEqual(items.slice(Math.max(0, items.length - capacity)));
        expect(ring.count).toBe(Math.min(capacity, items.length));
      }),
    );
  });
});

describe('the events a run records', () => {
  it('keeps at most K events per node: the last K/4 chatty ones and the last others', () => {
    const all: TraceRecord[] = [];
    const K = 8;
    const r = runSimulation(defaultSimOptions(5), { eventsPerNodeMax: K, eventsMax: 30, onEvent: (e) => all.push(e) });
    expect(r.ok, r.violation).toBe(true);
    expect(r.lastEvents).toEqual([]);
    const isClient = (x: TraceRecord): boolean => ['call', 'return', 'gave-up'].includes(x.event.kind);
    const isChatty = (x: TraceRecord): boolean => ['progress', 'snapshot-sent', 'snapshot-resent'].includes(x.event.kind);
    const ids = r.trace.nodeIds();
    expect(ids).toEqual(expect.arrayContaining([CLUSTER_WIDE, 1, 2, 3]));
    for (const id of ids) {
      const mine = all.filter((x) => !isClient(x) && x.event.node === id);
      const kept = r.trace.eventsOf(id);
      expect(kept.length, `node ${id}`).toBeLessThanOrEqual(K);
      const expected = [...mine.filter((x) => !isChatty(x)).slice(-(K - K / 4)), ...mine.filter(isChatty).slice(-K / 4)].sort((a, b) => a.seq - b.seq);
      expect(kept, `node ${id}`).toEqual(expected);
    }
    // Node 1 had many more events than it kept: the ring really bounded it.
    expect(all.filter((x) => x.event.node === 1 && !isClient(x)).length).toBeGreaterThan(3 * K);
    expect(r.trace.clientEvents()).toEqual(all.filter(isClient).slice(-K));
    expect(r.trace.recentEvents()).toEqual(all.slice(-30));
  });

  it('keeps at most 40 events per node by default', () => {
    const r = runSimulation(defaultSimOptions(6, { nodes: 5 }));
    expect(r.trace.eventsPerNodeMax).toBe(40);
    for (const id of r.trace.nodeIds()) expect(r.trace.eventsOf(id).length).toBeLessThanOrEqual(40);
    expect(Math.max(...r.trace.nodeIds().map((id) => r.trace.eventsOf(id).length))).toBe(40);
  });
});

describe('the report of a failing run', () => {
  it('shows each node its last events before the violation: starts, votes, role changes', () => {
    const r = firstFailing('no-truncate', 20);
    const lines = r.lastEvents;
    expect(lines[0]).toMatch(/^last events before the violation, by node/);
    for (const id of [1, 2, 3]) {
      const events = group(lines, `node ${id}`);
      expect(events.length, `node ${id}`).toBeGreaterThan(0);
      expect(events.length, `node ${id}`).toBeLessThanOrEqual(40);
      for (const line of events) expect(line).toMatch(new RegExp(`^ {4}\\[ *\\d+ ms\\] n${id} `));
    }
    const nodeLines = [1, 2, 3].flatMap((id) => group(lines, `node ${id}`)).join('\n');
    expect(nodeLines).toMatch(/ t\d+ becomes leader \(won\)/);
    expect(nodeLines).toMatch(/ t\d+ (pre-)?vote for \d \(t\d+\) granted/);
    expect(nodeLines).toMatch(/ t\d+ becomes follower/);
    // The violation is the last event of the cluster-wide group, at the time the run stopped.
    const cluster = group(lines, 'the network and the checks');
    expect(cluster.at(-1)).toBe(`    [${String(r.simulatedMs).padStart(6)} ms] VIOLATION ${r.violation!.split('\n')[0]}`);
    expect(group(lines, 'the clients').join('\n')).toMatch(/c\d (put|get|delete|cas) k\d/);
  });

  it('reports the simulator itself throwing, with the events before it', () => {
    // Node 3 cannot be built: the simulator throws at the cluster's first start, outside any event.
    const createNode = (config: RaftConfig): RaftNode => {
      if (config.id === 3) throw new Error('no node 3 today');
      return new RaftNode(config);
    };
    const r = runSimulation(defaultSimOptions(1, { createNode }));
    expect(r.ok).toBe(false);
    expect(r.violation).toMatch(/^exception at 0 ms: Error: no node 3 today/);
    expect(group(r.lastEvents, 'node 2').join('\n')).toMatch(/n2 t1 becomes follower \(start\)/);
    expect(group(r.lastEvents, 'node 3').join('\n')).toMatch(/n3 starts with bootstrap voters \[1,2,3\]/);
    expect(group(r.lastEvents, 'the network and the checks').at(-1)).toMatch(/VIOLATION exception at 0 ms: Error: no node 3 today$/);
  });
});
