// Reads a file through one reused buffer, so opening a log scans 1 GiB of segments without
// allocating 1 GiB. Fresh memory is not free: where the first touch of a page is slow (virtual
// machines), reading each 64 MiB segment into a buffer of its own made the open of a 1 GiB log take
// seconds (test/bench/RESULTS.md, storage, "WAL open"); through one window it is a page-cache copy
// into memory already touched.
import { assert } from "../lib/assert.ts";
import type { DiskFile } from "./disk.ts";

export class ReadWindow {
  private buf: Uint8Array;
  /** File offset of buf[0]. */
  private start = 0;
  /** Valid bytes in buf. */
  private len = 0;
  private file: DiskFile | undefined;
  private size = 0;

  constructor(
    initialBytes: number,
    private readonly maxBytes: number,
  ) {
    assert(initialBytes > 0 && initialBytes <= maxBytes, "read window size out of range");
    this.buf = new Uint8Array(initialBytes);
  }

  /** Point the window at another file (of the given size); the buffer is kept. */
  reset(file: DiskFile, size: number): void {
    this.file = file;
    this.size = size;
    this.start = 0;
    this.len = 0;
  }

  /**
   * Make [off, off + n) readable through bytes(). Returns false when the file ends first (the
   * window then holds what there is). n above maxBytes is a caller's bug: batch sizes are bounded.
   */
  ensure(off: number, n: number): boolean {
    assert(n <= this.maxBytes, () => `read window of ${n} bytes exceeds ${this.maxBytes}`);
    if (off >= this.start && off + n <= this.start + this.len) return true;
    if (n > this.buf.length) this.buf = new Uint8Array(Math.min(this.maxBytes, Math.max(n, this.buf.length * 2)));
    const want = Math.min(this.buf.length, Math.max(0, this.size - off));
    const file = this.file;
    assert(file, "read window used before reset");
    this.start = off;
    this.len = want > 0 ? file.read(this.buf.subarray(0, want), off) : 0;
    return this.len >= n;
  }

  /** The window's bytes; index i holds the file's byte at base() + i. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  base(): number {
    return this.start;
  }

  /** The window's capacity: how much one ensure() can read. */
  capacity(): number {
    return this.buf.length;
  }
}
