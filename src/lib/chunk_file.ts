// Writing a stream of chunks to a new file in gathered writes: one writev per ~1 MiB instead of one
// write (and one thread-pool round trip) per chunk, one write in flight while the next chunks arrive.
// Used for a save's spool and a staged restore file: both faster than a write per chunk (test/bench/RESULTS.md).
import { open, rm } from "node:fs/promises";
import { assert } from "./assert.ts";
import { release } from "./release.ts";

/** Chunks are gathered into writes of about this size: one syscall per few blocks, not two per block. */
export const GATHERED_WRITE_BYTES = 1 << 20;

/**
 * Write `chunks` to a new file at `path` (mode 0600), gathered into writes of about GATHERED_WRITE_BYTES,
 * one write in flight while the next chunks are produced. On failure the file is removed. `durable`: fsync
 * before closing (a file that is kept). `release`: nothing else holds the chunks once written (lib/release.ts).
 */
export async function writeChunkFile(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  opts: { durable: boolean; release: boolean },
): Promise<number> {
  const fh = await open(path, "wx", 0o600);
  let size = 0;
  let writing: Promise<void> | undefined;
  const writeAll = async (parts: Uint8Array[], bytes: number): Promise<void> => {
    while (bytes > 0) {
      const { bytesWritten } = await fh.writev(parts);
      assert(bytesWritten > 0, "file write made progress");
      bytes -= bytesWritten;
      if (bytes === 0) return;
      // A short write: drop what went out and retry the rest.
      let skip = bytesWritten;
      while (skip >= parts[0]!.length) skip -= parts.shift()!.length;
      parts[0] = parts[0]!.subarray(skip);
    }
  };
  try {
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    for await (const c of chunks) {
      batch.push(c);
      batchBytes += c.byteLength;
      size += c.byteLength;
      if (batchBytes >= GATHERED_WRITE_BYTES) {
        await writing;
        writing = writeAll(batch, batchBytes).then(opts.release ? releaseAll(batch) : undefined);
        writing.catch(() => undefined); // awaited before the next write or at the end
        batch = [];
        batchBytes = 0;
      }
    }
    await writing;
    if (batchBytes > 0) await writeAll(batch, batchBytes).then(opts.release ? releaseAll(batch) : undefined);
    if (opts.durable) await fh.datasync();
  } catch (e) {
    await writing?.catch(() => undefined);
    await fh.close().catch(() => {});
    await rm(path, { force: true });
    throw e;
  }
  await fh.close();
  return size;
}

/**
 * After a write of chunks nothing else holds (the writer's, or a mux stream's views, which release leaves
 * alone): give their memory back for the next.
 */
function releaseAll(chunks: Uint8Array[]): () => void {
  const parts = chunks.slice();
  return () => {
    for (const c of parts) release(c);
  };
}
