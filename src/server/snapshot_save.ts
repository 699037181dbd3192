// Snapshot save: a point-in-time view of the state in the snapshot file format, spooled to a file
// on disk by the server that answers the HTTP request, to learn its size and SHA-256 before the
// status line, then streamed. The view is taken after a read barrier (ReadIndex: the leader confirms
// it leads and names its commit index, and the view waits until it is applied here) on whichever
// server answers, so the file is as current as the leader's without crossing the network twice; a
// server that is far behind hands the save to the leader instead. With ?stale, no barrier. Between
// servers it is a streaming RPC: the bytes as the encoding server makes them, then size and digest.
import { type FileHandle, mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { decode, encode } from "../lib/codec.ts";
import { settlesWithin } from "../lib/deadline.ts";
import { EdgeError } from "../lib/errors.ts";
import type { QueryMeta, QueryOptions, SnapshotDownload } from "./backend.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { assert } from "../lib/assert.ts";
import { writeChunkFile } from "../lib/chunk_file.ts";
import { SAVE_PIPELINE, type WriteResult } from "../snapshot/writer.ts";
import type { Configuration } from "../raft/storage.ts";
import type { StateView } from "../state/state_view.ts";
import type { Fsm } from "./fsm.ts";
import type { Metrics } from "./metrics.ts";
import type { Placement } from "./placement.ts";
import { owned, sendAll } from "./chunk_ownership.ts";
import type { Logger } from "../lib/logger.ts";
import { NO_HISTORY, type SnapshotRecorder } from "./snapshot_history.ts";

/**
 * Bytes per read of a spool into the HTTP body: a few large reads (one thread-pool round trip each) rather
 * than many small ones; the HTTP server writes each to the socket as it drains.
 */
const BODY_READ_BYTES = 1 << 20;
/**
 * How long a server that does not lead waits for its read barrier before handing the save to the
 * leader: a caught-up server passes it in a round trip; one still applying a large backlog would hold
 * the save back for longer than sending it on costs.
 */
export const LOCAL_BARRIER_MS = 1_000;

/** Where a snapshot file of the current state comes from. */
export interface StateSource {
  readonly state: { view(): StateView };
  readonly fsm: Pick<Fsm, "snapshotChunks">;
  termOf(index: number): number;
  currentConfig(): Configuration;
}

/** What a save needs of the server. */
export interface SaveHost extends StateSource {
  readonly cfg: { readonly data_dir: string };
  readonly log: Logger;
  readonly stats: Metrics;
  readonly placement: Placement;
  readonly pool: { openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream> };
  readonly driver: { readBarrier(): Promise<unknown> } | undefined;
  /** Where the saves this server answers are recorded (none: not recorded). */
  readonly history?: SnapshotRecorder;
  queryMeta(index: number): QueryMeta;
  authorizeCall(method: string, args: Record<string, unknown>, token: string | undefined): Promise<void>;
}

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
export async function writeStateFile(s: StateSource, path: string, durable: boolean): Promise<SavedFile> {
  const view = s.state.view();
  const index = view.index;
  const term = index === 0 ? 0 : s.termOf(index);
  const meta = { index, term, config: s.currentConfig() };
  const id = `${term}-${index}-${Date.now()}`;
  const result: WriteResult = { size: 0, sha256: "", digest: "", records: 0 };
  const size = await writeChunkFile(path, s.fsm.snapshotChunks(view, meta, id, result, { pipeline: SAVE_PIPELINE }), {
    durable,
    release: true,
  });
  // The writer hashed every byte it produced: no second pass over the file.
  assert(result.size === size && result.sha256.length === 64, "the writer's result covers the bytes written");
  return { path, index, size, digest: Buffer.from(result.sha256, "hex").toString("base64") };
}

/** A body that streams a spool file and deletes it when done or cancelled. */
function fileBody(path: string, onDone: (ok: boolean, bytes: number) => void): ReadableStream<Uint8Array> {
  let fh: FileHandle | undefined;
  let bytes = 0;
  let finished = false;
  const finish = async (ok: boolean) => {
    if (finished) return;
    finished = true;
    await fh?.close().catch(() => undefined);
    await rm(path, { force: true });
    onDone(ok, bytes);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        try {
          if (!fh) {
            const opened = await open(path, "r");
            // Cancelled while opening: finish has run without this handle.
            if (finished) return void (await opened.close());
            fh = opened;
          }
          // Not zero-filled: the read overwrites what it returns, and only that is enqueued. Each read has a
          // buffer of its own, since the consumer may hold a chunk while the next is read.
          const buf = Buffer.allocUnsafe(BODY_READ_BYTES);
          const { bytesRead } = await fh.read(buf, 0, BODY_READ_BYTES, null);
          if (bytesRead === 0) {
            c.close();
            await finish(true);
          } else {
            bytes += bytesRead;
            c.enqueue(bytesRead === BODY_READ_BYTES ? buf : buf.subarray(0, bytesRead));
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
    { highWaterMark: 1 },
  );
}

/** What a save's size and digest are announced as, between servers. */
interface SaveMeta {
  Index: number;
  Size: number;
  /** base64 SHA-256. */
  Digest: string;
}

/** The bytes of a save and, once they are all read, its meta. */
interface SaveSource {
  chunks: AsyncIterable<Uint8Array>;
  meta(): SaveMeta;
}

/**
 * Snapshot.Save's shapes. "stream": a {Mode} chunk, the file's bytes as the leader produces them, then
 * the meta as the last chunk; the caller spools (its HTTP answer needs the digest first anyway), so the
 * transfer overlaps the encoding and the leader writes no file. Without a mode (servers before it): the
 * meta first, then the bytes of the leader's spool. A caller tells them apart by the first chunk.
 */
export type SaveMode = "stream";

function checkMeta(x: unknown): SaveMeta {
  const m = x as Partial<SaveMeta> | null;
  if (typeof m?.Index !== "number" || typeof m.Size !== "number" || typeof m.Digest !== "string")
    throw new EdgeError("RPC", "malformed snapshot save meta");
  return m as SaveMeta;
}

export class SnapshotSaver {
  constructor(private readonly s: SaveHost) {}

  /** The HTTP side: a spooled save, made here after a read barrier (or by the leader, or in another region). */
  async save(q: QueryOptions & { hops?: number }): Promise<SnapshotDownload> {
    const op = (this.s.history ?? NO_HISTORY).start("save", "received");
    return this.spooled(q, (ok, index, bytes) => {
      op.bytes(bytes);
      if (ok) op.ok(index);
      else op.failed(new EdgeError("ABORTED", `the download ended after ${bytes} bytes, before its last`));
    }).catch((e: unknown) => {
      op.failed(e);
      throw e;
    });
  }

  private async spooled(
    q: QueryOptions & { hops?: number },
    onDone: (ok: boolean, index: number, bytes: number) => void,
  ): Promise<SnapshotDownload> {
    const s = this.s;
    const t0 = performance.now();
    const dir = join(s.cfg.data_dir, "tmp");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `save-${crypto.randomUUID()}.snap`);
    const src = await this.source(q);
    const size = await writeChunkFile(path, src.chunks, { durable: false, release: true });
    const m = src.meta();
    if (m.Size !== size) {
      await rm(path, { force: true });
      throw new EdgeError("RPC", `snapshot save: received ${size} bytes, the leader announced ${m.Size}`);
    }
    const body = fileBody(path, (ok, bytes) => {
      onDone(ok, m.Index, bytes);
      s.stats.inc("edgenode_snapshot_save_total", { outcome: ok ? "ok" : "error" }, 1, "snapshot saves by outcome");
      s.stats.inc("edgenode_snapshot_save_bytes_total", {}, bytes, "bytes of snapshot saves streamed");
      s.stats.observe(
        "edgenode_snapshot_save_ms",
        performance.now() - t0,
        {},
        "snapshot save duration (ms)",
        [10, 100, 1000, 10_000, 60_000, 600_000],
      );
    });
    return { index: m.Index, size: m.Size, digest: m.Digest, body, meta: s.queryMeta(m.Index) };
  }

  /**
   * Where a save's bytes come from: this server's state after a read barrier (any server of this region,
   * the leader or not), or, when that barrier is slow here, the next hop towards the leader.
   */
  private async source(q: QueryOptions & { hops?: number }): Promise<SaveSource> {
    const s = this.s;
    const send = (addr: string, hops: number) => this.forward(addr, hops, q);
    // As a save always went: to the leader (here if this server leads; nowhere with ?stale).
    const viaLeader = () =>
      s.placement.run(q, () => !q.stale, {
        here: async () => {
          await s.authorizeCall("Operator.SnapshotSave", {}, q.token);
          if (!s.driver) throw new EdgeError("NO_LEADER", "raft is not running on this server yet");
          if (!q.stale) await s.driver.readBarrier();
          return this.local();
        },
        send,
      });
    return s.placement.run(q, () => false, {
      here: async () => {
        if (q.stale || !s.driver) return viaLeader();
        const barrier = s.driver.readBarrier();
        barrier.catch(() => undefined); // settled below, or left to time out on its own
        let passed = false;
        try {
          if (await settlesWithin(barrier, LOCAL_BARRIER_MS)) {
            await barrier;
            passed = true;
          }
        } catch {
          // No leader known yet, say: the way through the leader waits for one, as a save always has.
        }
        if (!passed) return viaLeader();
        // After the barrier: a token made just before this request has been applied here too.
        await s.authorizeCall("Operator.SnapshotSave", {}, q.token);
        return this.local();
      },
      send,
    });
  }

  /** The state as of now, encoded as it is read; the view is taken synchronously here. */
  private local(): SaveSource {
    const s = this.s;
    const t0 = performance.now();
    const view = s.state.view();
    const index = view.index;
    const term = index === 0 ? 0 : s.termOf(index);
    const result: WriteResult = { size: 0, sha256: "", digest: "", records: 0 };
    const chunks = s.fsm.snapshotChunks(view, { index, term, config: s.currentConfig() }, `${term}-${index}-${Date.now()}`, result, {
      pipeline: SAVE_PIPELINE,
    });
    let done = false;
    return {
      chunks: (async function* () {
        yield* chunks;
        done = true;
        s.log.info("snapshot save", { index, bytes: result.size, ms: Math.round(performance.now() - t0) });
      })(),
      meta: () => {
        assert(done && result.sha256.length === 64, "a save's meta is read after its last byte");
        return { Index: index, Size: result.size, Digest: Buffer.from(result.sha256, "hex").toString("base64") };
      },
    };
  }

  /** Open Snapshot.Save on `addr` in stream mode; a server that predates it answers meta-first. */
  private async forward(addr: string, hops: number, q: QueryOptions): Promise<SaveSource> {
    const s = this.s;
    const mode: SaveMode = "stream";
    const stream = await s.pool.openStream(addr, "Snapshot.Save", { q: { ...q, hops }, mode }, { timeoutMs: 10_000 });
    const it = stream[Symbol.asyncIterator]();
    let src: SaveSource;
    try {
      const first = await it.next();
      if (first.done) throw new EdgeError("RPC", "snapshot save stream ended before its header");
      const head = decode(first.value) as { Mode?: unknown } | null;
      if (head?.Mode === "stream") src = trailingMeta(it);
      else {
        const m = checkMeta(head);
        src = { chunks: { [Symbol.asyncIterator]: () => it }, meta: () => m };
      }
    } catch (e) {
      stream.abort("CANCELLED", "snapshot save forward failed");
      throw e;
    }
    const inner = src.chunks;
    // A consumer that stops early (its spool failed, its own caller went away) resets the stream, so the
    // leader stops encoding.
    src.chunks = (async function* () {
      let ok = false;
      try {
        yield* inner;
        ok = true;
      } finally {
        if (!ok) stream.abort("CANCELLED", "snapshot save abandoned by its caller");
      }
    })();
    return src;
  }

  /** The RPC side: serve a save for a peer, forwarding further if needed. */
  async serve(q: QueryOptions & { hops?: number }, stream: RpcStream, mode?: SaveMode): Promise<void> {
    if (mode !== "stream") return this.serveSpooled(q, stream);
    const src = await this.source(q);
    await stream.send(encode({ Mode: "stream" }));
    // The encoder's blocks, or a view of a hop's frame (which release leaves alone).
    await sendAll(stream, { chunks: src.chunks, owned: owned("encoder") });
    await stream.send(encode(src.meta()));
    await stream.end();
  }

  /** For callers that predate stream mode: meta first, so spool here first. */
  private async serveSpooled(q: QueryOptions & { hops?: number }, stream: RpcStream): Promise<void> {
    const d = await this.save(q);
    await stream.send(encode({ Index: d.index, Size: d.size, Digest: d.digest }));
    // The spool file's chunks; leaving early cancels the body, which deletes the spool.
    await sendAll(stream, { chunks: d.body, owned: owned("file") });
    await stream.end();
  }
}

/** A stream-mode answer after its {Mode} chunk: every chunk is data but the last, which is the meta. */
function trailingMeta(it: AsyncIterator<Uint8Array>): SaveSource {
  let meta: SaveMeta | undefined;
  return {
    chunks: (async function* () {
      // Hold each chunk back until the next arrives: only the end of the stream says which was last.
      let held: Uint8Array | undefined;
      for (;;) {
        const n = await it.next();
        if (n.done) break;
        if (held) yield held;
        held = n.value;
      }
      if (!held) throw new EdgeError("RPC", "snapshot save stream ended without its meta");
      meta = checkMeta(decode(held));
    })(),
    meta: () => {
      assert(meta !== undefined, "a save's meta is read after its last byte");
      return meta;
    },
  };
}
