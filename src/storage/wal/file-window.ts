/**
 * Reads a file through a window of bounded size, for scans that walk a segment front to
 * back (recovery, verify, dump) without holding the whole segment in memory.
 */
import { readFully, type Fd, type FileSystem } from '../fs.ts';

/** Bytes read at a time while scanning. */
export const WINDOW_BYTES = 1 << 20;

export class FileWindow {
  private storage = new Uint8Array(0);
  /** Bytes of `storage` holding file data, from file offset `start`. */
  private filled = 0;
  private start = 0;

  constructor(
    private readonly fs: FileSystem,
    private readonly fd: Fd,
    /** The file's size; reads stop there. */
    readonly sizeBytes: number,
  ) {}

  /**
   * Bytes [offset, offset + length) of the file, clipped at its end: the result is shorter
   * than `length` when the file ends first. The view is valid until the next call.
   */
  view(offset: number, length: number): Uint8Array {
    const end = Math.min(offset + length, this.sizeBytes);
    if (offset >= end) return new Uint8Array(0);
    if (offset < this.start || end > this.start + this.filled) this.fill(offset, end - offset);
    return this.storage.subarray(offset - this.start, Math.min(end, this.start + this.filled) - this.start);
  }

  /** The byte at `offset`, which must be below sizeBytes. */
  byte(offset: number): number {
    if (offset < this.start || offset >= this.start + this.filled) this.fill(offset, 1);
    return this.storage[offset - this.start]!;
  }

  private fill(offset: number, length: number): void {
    const want = Math.min(Math.max(length, WINDOW_BYTES), this.sizeBytes - offset);
    if (this.storage.length < want) this.storage = new Uint8Array(Math.max(want, WINDOW_BYTES));
    this.filled = readFully(this.fs, this.fd, this.storage.subarray(0, want), offset);
    this.start = offset;
  }

  /** Whether every byte in [offset, sizeBytes) is zero. */
  zeroFrom(offset: number): boolean {
    for (let at = offset; at < this.sizeBytes; at += WINDOW_BYTES) {
      const bytes = this.view(at, WINDOW_BYTES);
      if (bytes.length === 0) return true;
      for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
    }
    return true;
  }
}
