/**
 * The store's size limits, in a module of their own so that every part of the KV layer
 * (commands, ranges, transactions) reads them without importing the others.
 */

/** Longest key, in bytes. */
export const KV_KEY_BYTES_MAX = 4096;
/** Longest value, in bytes. */
export const KV_VALUE_BYTES_MAX = 1 << 20;
/**
 * Longest encoded write request (a KvRequest in a log entry): a cas of the longest key and two
 * of the longest values, and a transaction, fit it. Rings, frames and proposals are sized for it.
 */
export const KV_REQUEST_BYTES_MAX = 64 + KV_KEY_BYTES_MAX + 2 * KV_VALUE_BYTES_MAX;
