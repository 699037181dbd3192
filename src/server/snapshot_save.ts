// Snapshot save: a point-in-time view of the state (on the leader after a read
// barrier, or locally with ?stale) written in the snapshot file format to a
// spool file on disk to learn its size and SHA-256, then streamed; forwarded
// between servers as a streaming RPC (a meta frame, then the bytes, then end).
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { decode, encode } from "../lib/codec.ts";
import { EdgeError } from "../lib/errors.ts";
import type { QueryOptions, SnapshotDownload } from "../http/backend.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { assert } from "../lib/assert.ts";
import { fileChunks } from "../snapshot/reader.ts";
import { SAVE_PIPELINE, type WriteResult } from "../snapshot/writer.ts";
import type { Server } from "./server.ts";

const CHUNK_BYTES = 256 * 1024;
/** Chunks are gathered into writes of about this size: one syscall per few blocks, not two per block. */
const SPOOL_WRITE_BYTES = 1 << 20;

export interface SavedFile {
  path: string;
  index: number;
  size: number;
  /** base64 SHA-256, as the Digest header carries it. */
  digest: string;
}

/**
 * Write the current state to `path` (0600); the view is taken synchronously at call time. `durable`
 * fsyncs it (a file that is kept); a save's spool is read back at once and deleted, so it is not.
 */
export async function writeStateFile(s: Server, path: string, durable: boolean): Promise<SavedFile> {
  const view = s.state.view();
  const index = view.index;
  const term = index === 0 ? 0 : s.termOf(index);
  const meta = { index, term, config: s.currentConfig() };
  const id = `${term}-${index}-${Date.now()}`;
  const result: WriteResult = { size: 0, sha256: "", digest: "", records: 0 };
  const size = await writeChunks(path, s.fsm.snapshotChunks(view, meta, id, result, { pipeline: SAVE_PIPELINE }), durable);
  // The writer hashed every byte it produced: no second pass over the file.
  assert(result.size === size && result.sha256.length === 64, "the writer's result covers the bytes written");
  return { path, index, size, digest: Buffer.from(result.sha256, "hex").toString("base64") };
}

/**
 * Write `chunks` to a new file at `path` (mode 0600), gathered into writes of about SPOOL_WRITE_BYTES,
 * one write in flight while the next chunks are produced. On failure the file is removed.
 */
async function writeChunks(path: string, chunks: AsyncIterable<Uint8Array>, durable: boolean): Promise<number> {
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
      if (batchBytes >= SPOOL_WRITE_BYTES) {
        await writing;
        writing = writeAll(batch, batchBytes);
        writing.catch(() => undefined); // awaited before the next write or at the end
        batch = [];
        batchBytes = 0;
      }
    }
    await writing;
    if (batchBytes > 0) await writeAll(batch, batchBytes);
    if (durable) await fh.datasync();
  } catch (e) {
    await writing?.catch(() => undefined);
    await fh.close().catch(() => {});
    await rm(path, { force: true });
    throw e;
  }
  await fh.close();
  return size;
}

/** A body that streams a spool file and deletes it when done or cancelled. */
function fileBody(path: string, onDone: (ok: boolean, bytes: number) => void): ReadableStream<Uint8Array> {
  const it = fileChunks(path, CHUNK_BYTES)[Symbol.asyncIterator]();
  let bytes = 0;
  const finish = async (ok: boolean) => {
    await it.return?.(undefined);
    await rm(path, { force: true });
    onDone(ok, bytes);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        try {
          const n = await it.next();
          if (n.done) {
            c.close();
            await finish(true);
          } else {
            bytes += n.value.byteLength;
            c.enqueue(n.value);
          }
        } catch (e) {
          c.error(e);
          await finish(false);
        }
      },
      async cancel() {
        await finish(false);
      },
    },
    { highWaterMark: 2 },
  );
}

export class SnapshotSaver {
  constructor(private readonly s: Server) {}

  async save(q: QueryOptions & { hops?: number }): Promise<SnapshotDownload> {
    const s = this.s;
    if (q.region && q.region !== s.cfg.region) return s.viaRegion(q.region, (addr) => this.forward(addr, q));
    if (!q.stale && !s.driver?.isLeader) {
      const addr = await s.leaderAddressOrWait();
      return this.forward(addr, q);
    }
    await s.authorizeCall("Operator.SnapshotSave", {}, q.token);
    if (!s.driver) throw new EdgeError("NO_LEADER", "raft is not running on this server yet");
    if (!q.stale) await s.driver.readBarrier();
    const t0 = performance.now();
    const dir = join(s.cfg.data_dir, "tmp");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const saved = await writeStateFile(s, join(dir, `save-${crypto.randomUUID()}.snap`), false);
    s.log.info("snapshot save", { index: saved.index, bytes: saved.size, ms: Math.round(performance.now() - t0) });
    const body = fileBody(saved.path, (ok, bytes) => {
      s.stats.inc("edgenode_snapshot_save_total", { outcome: ok ? "ok" : "error" }, 1, "snapshot saves by outcome");
      s.stats.inc("edgenode_snapshot_save_bytes_total", {}, bytes, "bytes of snapshot saves streamed");
      s.stats.observe("edgenode_snapshot_save_ms", performance.now() - t0, {}, "snapshot save duration (ms)", [10, 100, 1000, 10_000, 60_000, 600_000]);
    });
    return { index: saved.index, size: saved.size, digest: saved.digest, body, meta: s.queryMeta(saved.index) };
  }

  private async forward(addr: string, q: QueryOptions & { hops?: number }): Promise<SnapshotDownload> {
    const s = this.s;
    const hops = (q.hops ?? 0) + 1;
    if (hops > 3) throw new EdgeError("NO_LEADER", "No cluster leader (forwarding loop)");
    const stream = await s.pool.openStream(addr, "Snapshot.Save", { q: { ...q, hops } }, { timeoutMs: 10_000 });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) throw new EdgeError("RPC", "snapshot save stream ended before its header");
    const m = decode(first.value) as { Index: number; Size: number; Digest: string };
    if (typeof m?.Index !== "number" || typeof m.Size !== "number" || typeof m.Digest !== "string") throw new EdgeError("RPC", "malformed snapshot save header");
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          try {
            const n = await it.next();
            if (n.done) c.close();
            else c.enqueue(n.value);
          } catch (e) {
            // After the status line went out: erroring the body cuts the response short, so the
            // client's Digest (and Content-Length) check fails rather than accepting a partial file.
            c.error(e);
          }
        },
        cancel() {
          stream.abort("CANCELLED", "client went away");
        },
      },
      { highWaterMark: 2 },
    );
    return { index: m.Index, size: m.Size, digest: m.Digest, body, meta: s.queryMeta(m.Index) };
  }

  /** The RPC side: serve a save for a peer, forwarding further if needed. */
  async serve(q: QueryOptions & { hops?: number }, stream: RpcStream): Promise<void> {
    const d = await this.save(q);
    await stream.send(encode({ Index: d.index, Size: d.size, Digest: d.digest }));
    const reader = d.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await stream.send(value);
      }
    } catch (e) {
      await reader.cancel().catch(() => {});
      throw e;
    }
    await stream.end();
  }
}
