/**
 * The frames a node server handles without decoding them (client-protocol frames read by
 * their first bytes: runtime/client-protocol.ts holds the format), the replies it makes
 * itself, and the tagged frames that carry a forwarded request or its reply between node
 * servers.
 *
 * Forwarded requests and their replies travel on the peer transport's append lane, beside
 * Raft messages (whose first byte, their format version, is 1):
 *
 * ```
 *   [tag u8: 0xF0 request | 0xF1 reply][id u32 LE: the forwarding side's][client-protocol frame]
 * ```
 */

import { ErrorCode, errorCodeWire } from '../base/index.ts';
import { encodedReplyBytes, writeReply, type ClientReply, type FrameCodec } from '../runtime/index.ts';

/** The wire value of NOT_LEADER in an error reply. */
export const NOT_LEADER_WIRE = errorCodeWire(ErrorCode.NOT_LEADER);

export const FORWARD_REQUEST = 0xf0;
export const FORWARD_REPLY = 0xf1;
export const FORWARD_HEADER_BYTES = 5;

/** Raw frames into a ring: copied from the view handed in. */
export const bytesCodec: FrameCodec<Uint8Array> = {
  encodedBytes: (b) => b.length,
  write: (b, _writer, memory, offset) => memory.set(b, offset),
};

/** A copy of `b`: a socket hands out Buffers, whose slice() is a view, not a copy. */
export const keepCopy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** A tag, an id and a client-protocol frame: what a forwarded request or reply carries. */
export function forwardFrame(tag: number, id: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(FORWARD_HEADER_BYTES + frame.length);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, id, true);
  out.set(frame, FORWARD_HEADER_BYTES);
  return out;
}

/** A reply made here rather than by the node: its frame. */
export function replyFrame(reply: ClientReply): Uint8Array {
  const frame = new Uint8Array(encodedReplyBytes(reply));
  writeReply(reply, frame);
  return frame;
}

/** An error reply for request `requestId` (a watch gets a watch-end instead). */
export function errorFrame(requestId: number, code: ErrorCode, options: { readonly watch?: boolean; readonly leaderHint?: number; readonly proposed?: boolean } = {}): Uint8Array {
  if (options.watch === true) return replyFrame({ kind: 'watch-end', requestId, code });
  return replyFrame({ kind: 'error', requestId, code, leaderHint: options.leaderHint ?? 0, proposed: options.proposed ?? false });
}
