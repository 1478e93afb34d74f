// Proves the simulator catches the mistakes of whoever starts nodes, which the start guard
// (src/sim/operator.ts, with checkNodeDirectory and the cluster record's bootstrap voters)
// exists to stop: a node whose disk was wiped rejoining under its old identity with an empty
// log, and a node started with a configuration the cluster does not have. With the guard's
// check skipped, a bounded number of seeds finds a violation, of the kind the mistake
// causes, and the failing run's report names the fault; the same seed with the guard in
// place passes, the guard having refused the node.
import { describe, expect, it } from 'vitest';
import { huntBug } from './planted-bugs.ts';

const SEEDS_MAX = 400;

describe('planted operator mistakes are caught', () => {
  it('a node whose disk was wiped rejoins as a voter with an empty log', () => {
    const found = huntBug('wiped-node-rejoins', SEEDS_MAX, /^(election safety|leader completeness|state machine safety|linearizability)/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
    // An empty log grants votes to stale candidates, and a lost vote record lets it vote twice in a term.
    expect(found!.violation).toMatch(/disk wipes 1\b/);
    expect(found!.violation).toMatch(/node \d+ rejoined with an empty log under its old identity/);
    expect(found!.controlStats.diskWipes).toBe(1);
    expect(found!.controlStats.stateLostStops, 'the control refused the wiped node').toBe(1);
  });

  it('a node started with a configuration the cluster does not have bootstraps one of its own', () => {
    const found = huntBug('wrong-bootstrap-config', SEEDS_MAX, /^(log matching: node \d+ holds a different entry at index 1 term 1|election safety|linearizability)/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
    expect(found!.violation).toMatch(/started with bootstrap voters \[[\d, ]+\] \(.*\), not refused/);
    expect(found!.controlStats.misconfiguredStarts).toBeGreaterThan(0);
    expect(found!.controlStats.misconfiguredRefusals, 'the control refused every such start').toBe(found!.controlStats.misconfiguredStarts);
  });
});
