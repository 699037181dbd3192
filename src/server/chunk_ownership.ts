// Who may hand a byte chunk's memory back at once (lib/release.ts) instead of leaving it to the GC.
// The rule, written once: a source that gives each chunk to one reader only — an RPC stream (its
// FrameReader yields whole frames nobody else sees), a file read (fresh buffers), the snapshot
// encoder (its output blocks) — lets whoever uses a chunk last release it. An HTTP body's chunks
// may still be held by the runtime: they are left to the GC.
import { release } from "../lib/release.ts";

export type ChunkSource = "rpc" | "file" | "encoder" | "http";

/** Whether chunks from `source` are their reader's alone, so it may release each once used up. */
export function owned(source: ChunkSource): boolean {
  return source !== "http";
}

/** Chunks and whether their reader owns them (see `owned`). */
export interface Chunks {
  chunks: AsyncIterable<Uint8Array>;
  owned: boolean;
}

/**
 * Send every chunk of `chunks` on `stream`; an owned chunk is released once sent (the socket holds its
 * own copy by then), so its memory serves the next. A view of part of a larger buffer is left alone.
 */
export async function sendAll(stream: { send(c: Uint8Array): Promise<void> }, src: Chunks, each?: () => void): Promise<void> {
  for await (const c of src.chunks) {
    each?.();
    await stream.send(c);
    if (src.owned) release(c);
  }
}
