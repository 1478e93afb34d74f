// Proves that a client whose first write is refused before it reaches the log (aborted by
// its signal, or refused with NOT_LEADER by a follower it pinned) can still write: its next
// writes succeed instead of failing with SESSION_EXPIRED, since the session's first sequence
// number never reached the state machine. Each test runs a real cluster on worker threads.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { leaderOf, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

describe("a client's first write refused before the log", () => {
  it('a first write refused before it reached the log (aborted) does not break the next write', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const aborted = AbortSignal.abort();
    await expect(kv.put('a', '1', { signal: aborted })).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    // The session's seq 1 never reached the state machine; its seq 2 is refused there as
    // 'expired' (no session, seq > 1) and the client reports SESSION_EXPIRED.
    await expect(kv.put('a', '2')).resolves.toBeUndefined();
    expect(new TextDecoder().decode(await kv.get('a'))).toBe('2');
  });

  it('a first write refused with NOT_LEADER by a pinned follower does not break the next write', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const leader = await leaderOf(cluster);
    const follower = cluster.nodeIds().find((id) => id !== leader)!;
    await expect(kv.put('b', '1', { nodeId: follower })).rejects.toMatchObject({ code: ErrorCode.NOT_LEADER });
    await expect(kv.put('b', '2')).resolves.toBeUndefined();
    // Every later write of this client goes through the same broken session.
    await expect(kv.put('b', '3')).resolves.toBeUndefined();
  });
});
