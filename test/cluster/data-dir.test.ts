// What a data directory guarantees, proved on real threads and files: one cluster at a time
// holds it (in this process or another, and a crashed holder's lock is broken); a node whose
// state is lost never votes again under its old identity and is replaced by a new member; a
// node count that disagrees with the stored membership is refused; one damaged node does not
// keep the others from opening; a directory that cannot be used gives a typed error.
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, createCluster, type Cluster } from '../../src/index.ts';
import { afterTest, FAST, leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const dec = new TextDecoder();

async function writeKeys(c: Cluster, count: number, prefix = 'k'): Promise<void> {
  const kv = c.client();
  await Promise.all(Array.from({ length: count }, (_, i) => kv.put(`${prefix}${i}`, `v${i}`)));
}

async function readKeys(c: Cluster, count: number, prefix = 'k'): Promise<(string | undefined)[]> {
  const kv = c.client();
  const values = await Promise.all(Array.from({ length: count }, (_, i) => kv.get(`${prefix}${i}`)));
  return values.map((v) => (v === undefined ? undefined : dec.decode(v)));
}

/** A data directory of a 3-node cluster that wrote `count` keys and closed. */
async function closedDir(count: number): Promise<string> {
  const dir = tempDir();
  const c = await start({ nodes: 3, dataDir: dir });
  await writeKeys(c, count);
  await c.close();
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    const value = await p;
    if (value !== null && typeof value === 'object' && 'close' in value) await (value as Cluster).close();
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

/** Starts a child process that opens a cluster on `dir` and waits; resolves with its pid once open. */
function holdInChild(dir: string): Promise<{ pid: number; exited: Promise<number | null> }> {
  // A module file, not --input-type: the nodes' worker threads inherit the process's flags.
  const script = join(tempDir(), 'hold.mjs');
  writeFileSync(
    script,
    `import { createCluster } from ${JSON.stringify(new URL('../../dist/src/index.js', import.meta.url).href)};
    const c = await createCluster({ nodes: 1, dataDir: ${JSON.stringify(dir)}, node: { tickMs: 10 }, raft: { electionTimeoutTicks: 20, heartbeatIntervalTicks: 2 } });
    process.stdout.write('open\\n');
    setTimeout(() => c.close(), 60_000);
    `,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  afterTest(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('open')) resolve({ pid: child.pid!, exited });
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before it opened the cluster`)));
  });
}

describe('the data directory lock', () => {
  it('refuses a second cluster on a directory in use in this process, and allows it after close()', async () => {
    const dir = tempDir();
    const a = await start({ nodes: 3, dataDir: dir });
    await a.client().put('a', 'first');
    const err = await rejection(createCluster({ ...FAST, nodes: 3, dataDir: dir }));
    expect(err.code).toBe(ErrorCode.DATA_DIR_LOCKED);
    expect(err.message).toMatch(/in use by another cluster in this process/);
    // The first cluster was not disturbed.
    await a.client().put('a', 'second');
    expect(dec.decode((await a.client().get('a'))!)).toBe('second');
    await a.close();
    const b = await start({ dataDir: dir });
    expect(dec.decode((await b.client().get('a'))!)).toBe('second');
  });

  it('refuses a directory held by another live process, and breaks the lock of one that died', async () => {
    const dir = tempDir();
    const child = await holdInChild(dir);
    const lock = readFileSync(join(dir, 'LOCK'), 'utf8');
    expect(lock).toContain(`pid ${child.pid}`);
    const err = await rejection(createCluster({ ...FAST, nodes: 1, dataDir: dir }));
    expect(err.code).toBe(ErrorCode.DATA_DIR_LOCKED);
    expect(err.message).toContain(`process ${child.pid}`);
    process.kill(child.pid, 'SIGKILL');
    await child.exited;
    // The dead holder's lock is still there, and is broken by the next opener.
    expect(readdirSync(dir)).toContain('LOCK');
    const c = await start({ nodes: 1, dataDir: dir });
    await c.client().put('x', 'y');
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toContain(`pid ${process.pid}`);
  });
});

describe('a node whose state is lost', () => {
  it('is refused (STATE_LOST) instead of voting with an empty log, and is replaced by a new member that catches up', async () => {
    const dir = tempDir();
    const a = await start({ nodes: 3, dataDir: dir });
    await leaderOf(a);
    await a.crash(3);
    await writeKeys(a, 100);
    await a.close();
    rmSync(join(dir, 'node-1'), { recursive: true });

    const b = await start({ dataDir: dir });
    const st = await b.status();
    const node1 = st.nodes.find((n) => n.id === 1)!;
    expect(node1.alive).toBe(false);
    expect(node1.errorCode).toBe(ErrorCode.STATE_LOST);
    expect(node1.error).toMatch(/node 1 has run before/);
    expect(await readKeys(b, 100)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
    // Restarting it under its old identity stays refused.
    expect((await rejection(b.restart(1))).code).toBe(ErrorCode.STATE_LOST);

    const id = await b.replaceNode(1);
    expect(id).toBe(4);
    expect(b.nodeIds()).toEqual([2, 3, 4]);
    await b.crash(2);
    // Nodes 3 and 4 are a quorum of {2, 3, 4} and hold every key.
    expect(await readKeys(b, 100)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
    await b.close();
    // The replacement survives a reopen; node 1's id is never used again.
    const c = await start({ dataDir: dir });
    expect(c.nodeIds()).toEqual([2, 3, 4]);
    expect(await readKeys(c, 100)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
  });

  it('a node directory of another node or another cluster is refused (CONFIG_MISMATCH)', async () => {
    const dir = tempDir();
    const other = tempDir();
    const a = await start({ nodes: 3, dataDir: dir });
    await a.client().put('k', 'v');
    await a.close();
    const b = await start({ nodes: 3, dataDir: other });
    await b.client().put('k', 'other');
    await b.close();
    // node-2 replaced by the other cluster's node-2, node-1 by a copy of node-3.
    rmSync(join(dir, 'node-2'), { recursive: true });
    cpSync(join(other, 'node-2'), join(dir, 'node-2'), { recursive: true });
    rmSync(join(dir, 'node-1'), { recursive: true });
    cpSync(join(dir, 'node-3'), join(dir, 'node-1'), { recursive: true });
    const err = await rejection(createCluster({ ...FAST, dataDir: dir }));
    expect(err.code).toBe(ErrorCode.NO_QUORUM);
    expect(err.message).toMatch(/node 1: .*belongs to node 3/);
    expect(err.message).toMatch(/node 2: .*belongs to cluster/);
  });
});

describe('the node count', () => {
  it('a count that disagrees with the stored membership is refused; omitted, the stored one is used', async () => {
    const dir = tempDir();
    const a = await start({ nodes: 3, dataDir: dir });
    await a.client().put('k', 'v');
    await a.close();
    for (const nodes of [5, 1, 2]) {
      const err = await rejection(createCluster({ ...FAST, nodes, dataDir: dir }));
      expect(err.code).toBe(ErrorCode.CONFIG_MISMATCH);
      expect(err.message).toContain(`holds a cluster of 3 nodes (1, 2, 3), and nodes: ${nodes} disagrees`);
    }
    // Nothing was created for the refused nodes.
    expect(readdirSync(dir).filter((n) => n.startsWith('node-')).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    const b = await start({ dataDir: dir });
    expect(b.nodeIds()).toEqual([1, 2, 3]);
    expect(dec.decode((await b.client().get('k'))!)).toBe('v');
  });

  it('node logs without the cluster record are refused rather than guessed at', async () => {
    const dir = tempDir();
    const a = await start({ nodes: 3, dataDir: dir });
    await a.client().put('k', 'v');
    await a.close();
    rmSync(join(dir, 'CLUSTER'));
    const err = await rejection(createCluster({ ...FAST, nodes: 3, dataDir: dir }));
    expect(err.code).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(err.message).toMatch(/holds node logs \(node-1, node-2, node-3\) but no CLUSTER record/);
  });
});

describe('damaged nodes', () => {
  /** Flips a byte near the start of node `id`'s first segment. */
  function damage(dir: string, id: number): void {
    const nodeDir = join(dir, `node-${id}`);
    const segment = readdirSync(nodeDir).find((n) => n.endsWith('.wal'))!;
    const path = join(nodeDir, segment);
    const bytes = readFileSync(path);
    // Inside the first batches, well before the log's end: damage, not a torn tail.
    bytes[200] = bytes[200]! ^ 0xff;
    writeFileSync(path, bytes);
  }

  it('one damaged node does not keep the cluster from opening: it is down with its CORRUPT_LOG', async () => {
    const dir = await closedDir(200);
    damage(dir, 1);
    const b = await start({ dataDir: dir });
    const node1 = (await b.status()).nodes.find((n) => n.id === 1)!;
    expect(node1.alive).toBe(false);
    expect(node1.errorCode).toBe(ErrorCode.CORRUPT_LOG);
    expect(node1.error).toMatch(/^node 1: corrupt WAL/);
    expect(await readKeys(b, 200)).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`));
  });

  it('when no quorum can start, the cluster rejects with NO_QUORUM naming each node and its reason', async () => {
    const dir = await closedDir(200);
    damage(dir, 1);
    rmSync(join(dir, 'node-3'), { recursive: true });
    const err = await rejection(createCluster({ ...FAST, dataDir: dir }));
    expect(err.code).toBe(ErrorCode.NO_QUORUM);
    expect(err.message).toMatch(/only 1 of 3 nodes could start/);
    expect(err.message).toMatch(/CORRUPT_LOG: node 1: corrupt WAL/);
    expect(err.message).toMatch(/STATE_LOST: node 3 has run before/);
    // Everything it started was stopped, and the directory unlocked.
    expect(readdirSync(dir)).not.toContain('LOCK');
  });
});

describe('a data directory that cannot be used', () => {
  it('a dataDir that is a file is INVALID_ARGUMENT', async () => {
    const file = join(tempDir(), 'file');
    writeFileSync(file, 'x');
    const err = await rejection(createCluster({ ...FAST, dataDir: file }));
    expect(err.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(err.message).toMatch(/is not a directory/);
    const nested = await rejection(createCluster({ ...FAST, dataDir: join(file, 'sub') }));
    expect(nested.code).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('a read-only dataDir is IO_ERROR saying it is not writable', async () => {
    const dir = tempDir();
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    if (process.getuid?.() === 0) {
      // Root writes through permissions: a read-only mount it is.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
      afterTest(() => void execFileSync('umount', [ro]));
    } else {
      chmodSync(ro, 0o500);
    }
    const err = await rejection(createCluster({ ...FAST, dataDir: ro }));
    expect(err.code).toBe(ErrorCode.IO_ERROR);
    expect(err.message).toMatch(/is not writable/);
    const below = await rejection(createCluster({ ...FAST, dataDir: join(ro, 'sub') }));
    expect(below.code).toBe(ErrorCode.IO_ERROR);
    expect(below.message).toMatch(/is not writable/);
  });
});
