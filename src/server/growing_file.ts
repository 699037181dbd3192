// A file one writer appends to (the leader's upload spool) while readers tail it (each staging peer's
// sender): a reader reads what is written so far through its own handle, waits for more, and ends once
// the writer says no more will come. The writer is never paced by a reader, and a reader holds one
// chunk at a time: a slow peer falls behind in the file (the page cache serves the re-read), not in memory.
import { type FileHandle, open } from "node:fs/promises";
import { assert } from "../lib/assert.ts";
import { DEFAULT_CHUNK_BYTES } from "../snapshot/reader.ts";

export class GrowingFile {
  private written = 0;
  private complete = false;
  private failure: Error | undefined;
  private waiters: (() => void)[] = [];

  constructor(readonly path: string) {}

  /** The writer has written `size` bytes in all (each write has completed). */
  grew(size: number): void {
    assert(!this.complete && size >= this.written, "a growing file only grows, until it is complete");
    this.written = size;
    this.wake();
  }

  /** No more bytes will come: the file is `size` bytes long. Readers end once they have read them. */
  end(size: number): void {
    this.grew(size);
    this.complete = true;
    this.wake();
  }

  /** The writer failed or gave up: every reader throws `e` at its next step. */
  fail(e: Error): void {
    this.failure ??= e;
    this.wake();
  }

  /**
   * A reader, its handle opened now (so a later rename of the file does not matter to it); its chunks are
   * fresh buffers, each the reader's alone. The caller closes it, read or not.
   */
  async reader(chunkBytes = DEFAULT_CHUNK_BYTES): Promise<{ chunks: AsyncIterable<Uint8Array>; close(): Promise<void> }> {
    const fh = await open(this.path, "r");
    let closing: Promise<void> | undefined;
    return {
      chunks: this.tail(fh, chunkBytes),
      close: () => (closing ??= fh.close()),
    };
  }

  private async *tail(fh: FileHandle, chunkBytes: number): AsyncGenerator<Uint8Array> {
    let off = 0;
    for (;;) {
      if (this.failure) throw this.failure;
      // A whole chunk at a time while the file grows (the writer's pieces may be smaller: fewer reads and
      // fewer, larger frames to the peer), whatever is left once it is complete.
      if (this.written - off >= chunkBytes || (this.complete && off < this.written)) {
        const n = Math.min(chunkBytes, this.written - off);
        const buf = new Uint8Array(n);
        const { bytesRead } = await fh.read(buf, 0, n, off);
        assert(bytesRead > 0, () => `the growing file ${this.path} holds ${this.written} bytes, read none at ${off}`);
        off += bytesRead;
        yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
      } else if (this.complete) {
        return;
      } else {
        await new Promise<void>((r) => this.waiters.push(r));
      }
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
