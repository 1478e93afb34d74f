/**
 * CPU time per thread, from `/proc/<pid>/task/<tid>/schedstat` (its first field: ns on a
 * CPU, user and system): far steadier than throughput on a shared machine, and it shows
 * which thread bounds a figure. The cluster benches read every thread of a process before
 * and after a measured window and divide by the operations in it.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One thread's CPU so far: its name (`comm`; "main" for the process's first thread) and ns. */
export interface ThreadTime {
  readonly name: string;
  readonly ns: number;
}

/** Every thread of process `pid` (default this one) and its CPU time so far, by tid. */
export function threadTimes(pid: number = process.pid): Map<number, ThreadTime> {
  const out = new Map<number, ThreadTime>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // No /proc, or the process is gone.
  }
  for (const tid of tids) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(Number(tid), { name: Number(tid) === pid ? 'main' : name, ns });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** CPU ns each thread used between two readings (threads that started meanwhile count from 0). */
export function threadDeltas(before: Map<number, ThreadTime>, after: Map<number, ThreadTime>): Map<number, ThreadTime> {
  const out = new Map<number, ThreadTime>();
  for (const [tid, t] of after) out.set(tid, { name: t.name, ns: Math.max(0, t.ns - (before.get(tid)?.ns ?? 0)) });
  return out;
}

/** All the CPU ns in a set of readings or deltas. */
export function totalNs(times: Map<number, ThreadTime>): number {
  let ns = 0;
  for (const t of times.values()) ns += t.ns;
  return ns;
}

/** CPU µs per operation of each role of an in-process cluster's threads. */
export interface ThreadCpu {
  /** The client: the main thread. */
  readonly clientUs: number;
  /** The leader's node thread, with any other node that shares it (0 if no leader was known). */
  readonly leaderUs: number;
  /** Each other node thread (followers' threads the leader's does not host), in the order of `roles.followers`. */
  readonly followersUs: readonly number[];
  /** Every other thread of the process: V8's collector and compiler helpers, libuv's pool. */
  readonly restUs: number;
  readonly totalUs: number;
}

/** Which thread plays which part: tids (Linux) of the main thread, the leader's and the followers' (several nodes may share one). */
export interface ThreadRoles {
  readonly main: number;
  readonly leader: number | undefined;
  readonly followers: readonly (number | undefined)[];
}

/**
 * Splits `deltas` (see {@link threadDeltas}) by role, in µs per operation over `ops`
 * operations. A thread is counted once: followers on the leader's thread (or on one counted
 * already) add no entry to `followersUs`.
 */
export function cpuByRole(deltas: Map<number, ThreadTime>, roles: ThreadRoles, ops: number): ThreadCpu {
  const per = (ns: number): number => (ops > 0 ? ns / 1000 / ops : 0);
  const of = (tid: number | undefined): number => (tid === undefined ? 0 : (deltas.get(tid)?.ns ?? 0));
  const clientNs = of(roles.main);
  const leaderNs = of(roles.leader);
  const counted = new Set([roles.main, roles.leader]);
  const followerTids: (number | undefined)[] = [];
  for (const tid of roles.followers) {
    if (tid !== undefined && counted.has(tid)) continue;
    counted.add(tid);
    followerTids.push(tid);
  }
  const followersNs = followerTids.map(of);
  const allNs = totalNs(deltas);
  const restNs = allNs - clientNs - leaderNs - followersNs.reduce((a, b) => a + b, 0);
  return { clientUs: per(clientNs), leaderUs: per(leaderNs), followersUs: followersNs.map(per), restUs: per(Math.max(0, restNs)), totalUs: per(allNs) };
}
