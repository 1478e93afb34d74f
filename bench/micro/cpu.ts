/** What the micro-benchmarks that count CPU per operation share. */

/** CPU nanoseconds (user + system, this process) per operation of `run`, which does `ops` of them. */
export function cpuNsPerOp(ops: number, run: () => void): number {
  const before = process.cpuUsage();
  run();
  const used = process.cpuUsage(before);
  return ((used.user + used.system) * 1000) / ops;
}

/** The median of `xs` (the lower middle one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
}
