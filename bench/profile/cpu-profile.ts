/** Reading V8 CPU profiles (`node --cpu-prof`): where a thread spent its busy time. */

export interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const SLEEPERS = new Set(['wait', 'waitForData', 'waitForRoom']);

/** Self time by function, the idle and GC pseudo-frames apart; shares are of the busy time. */
export function hottestFunctions(profile: CpuProfile, top: number): { name: string; share: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (node === undefined) continue;
    const f = node.callFrame;
    if (f.functionName === '(idle)' || f.functionName === '(program)') continue;
    // Time asleep in Atomics.wait (a node or a ring waiting for work) is not work.
    if (f.url.endsWith('ring.js') && SLEEPERS.has(f.functionName)) continue;
    const dt = profile.timeDeltas[i] ?? 0;
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + dt);
    busy += dt;
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, t]) => ({ name, share: busy === 0 ? 0 : t / busy }));
}

