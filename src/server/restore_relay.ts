// The restore's relay: any server takes an upload and, unless it leads the region the upload is for,
// streams it on towards that leader (placement.ts decides where), in bounded chunks with backpressure
// and an explicit end, then passes the leader's one reply frame back. The leader's part is
// restore_leader.ts; every server's apply of the committed entry is restore_apply.ts.
import { decode, encode } from "../lib/codec.ts";
import { withDeadline } from "../lib/deadline.ts";
import { formatDuration } from "../lib/duration.ts";
import { EdgeError, hasCode, toEdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { QueryOptions } from "./backend.ts";
import { RpcError } from "../transport/rpc_error.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { type Chunks, owned } from "./chunk_ownership.ts";
import type { Placement } from "./placement.ts";
import { recorded, replyIndex, type OpHandle, type SnapshotRecorder } from "./snapshot_history.ts";
import { RelayCollections } from "./relay_collections.ts";

/** Frames of the upload stream are at most this big (the HTTP body is re-chunked to it). */
export const UPLOAD_CHUNK_BYTES = 64 * 1024;
/** An upload that delivers nothing for this long is aborted. */
export const UPLOAD_IDLE_MS = 60_000;
/** A relaying server checks its RSS after forwarding this many upload bytes... */
const RELAY_CHECK_BYTES = 4 * 1024 * 1024;
/** ...and collects garbage fully once it has grown by this much since the upload began (within relay_collections.ts's budget). */
const RELAY_RSS_SLACK = 32 * 1024 * 1024;
/** Bound on opening the upload stream to the next server. */
const OPEN_TIMEOUT_MS = 10_000;

export type RestoreQuery = QueryOptions & { hops?: number };
export interface RestoreArgs {
  dryRun: boolean;
  q: RestoreQuery;
}

/** What the relay needs: where the upload goes, how to open a stream there, and the leader's part. */
export interface RelayHost {
  readonly placement: Placement;
  readonly log: Logger;
  readonly history: SnapshotRecorder;
  openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream>;
  /** Run the restore here, this server leading its region. */
  lead(upload: Chunks, args: RestoreArgs): Promise<unknown>;
}

export class RestoreRelay {
  private inFlight = 0;

  constructor(private readonly h: RelayHost) {}

  /** Whether an upload is passing through this server to its leader (a staging here then builds after). */
  get relaying(): boolean {
    return this.inFlight > 0;
  }

  /** Entry point on any server: relays the upload to the region, then the leader, or runs the restore here. */
  async restore(upload: Chunks, args: RestoreArgs): Promise<unknown> {
    // Only opening the stream may move on to another server of the region: no upload byte is read yet.
    const placed = await this.h.placement.run<{ reply: unknown } | { stream: RpcStream }>(args.q, () => true, {
      here: async () => ({ reply: await this.h.lead(upload, args) }),
      send: async (addr, hops) => ({
        stream: await this.h.openStream(
          addr,
          "Snapshot.Restore",
          { dryRun: args.dryRun, q: { ...args.q, hops } },
          { timeoutMs: OPEN_TIMEOUT_MS },
        ),
      }),
    });
    if ("reply" in placed) return placed.reply;
    const op = this.h.history.start("restore", "received", args.dryRun);
    return recorded(op, () => this.relay(placed.stream, upload.chunks, op), replyIndex);
  }

  /** The RPC side: receive an upload from a peer and answer with one reply frame. */
  async serve(args: RestoreArgs, stream: RpcStream): Promise<void> {
    const reply = await this.restore({ chunks: stream, owned: owned("rpc") }, args);
    await stream.send(encode(reply));
    await stream.end();
  }

  private async relay(stream: RpcStream, chunks: AsyncIterable<Uint8Array>, op: OpHandle): Promise<unknown> {
    this.inFlight++;
    try {
      return await this.relayUpload(stream, chunks, op);
    } finally {
      this.inFlight--;
    }
  }

  private async relayUpload(stream: RpcStream, chunks: AsyncIterable<Uint8Array>, op: OpHandle): Promise<unknown> {
    try {
      let floor = process.memoryUsage.rss();
      let sinceCheck = 0;
      let relayed = 0;
      const gc = new RelayCollections(performance.now());
      for await (const c of rechunk(chunks)) {
        await sendOrRefusal(stream, () => stream.send(c)).catch((e: unknown) => {
          // A leader lost mid-upload never had the whole file: nothing was restored (503, not a 500).
          throw connectionLost(e, "during the upload; nothing was restored, retry");
        });
        // Every chunk passes through as short-lived garbage (body chunk, CBOR frame) and JSC collects
        // lazily, letting the relay's RSS swell well past its budget before a collection (the more, the
        // larger the heap): collect fully when it has grown by RELAY_RSS_SLACK within the CPU budget, else
        // collect the young generation. A lazy hint (Bun.gc(false)) does not help.
        relayed += c.byteLength;
        op.bytes(relayed);
        sinceCheck += c.byteLength;
        if (sinceCheck >= RELAY_CHECK_BYTES) {
          sinceCheck = 0;
          if (process.memoryUsage.rss() - floor > RELAY_RSS_SLACK && gc.affordable(performance.now())) {
            gc.collect();
            // What a collection could not give back is not garbage: never collect in a loop over it.
            floor = Math.max(floor, process.memoryUsage.rss() - RELAY_RSS_SLACK / 2);
          } else gc.young();
        }
      }
      this.h.log.info("restore: upload relayed to the leader", {
        bytes: relayed,
        collections: gc.count,
        gcCpuMs: Math.round(gc.cpuMs),
        eden: gc.eden,
        edenCpuMs: Math.round(gc.edenCpuMs),
        ...(gc.declined > 0 ? { declined: gc.declined } : {}),
      });
    } catch (e) {
      // The upload failed on our side: the leader must see an abort, never a clean end. A leader lost
      // mid-upload never had the whole file, so nothing was restored: 503, not a server error.
      const err = hasCode(e, "DISCONNECTED")
        ? new EdgeError(
            "UNAVAILABLE",
            `lost the connection to the leader during the upload (${(e as Error).message}); nothing was restored, retry`,
          )
        : toEdgeError(e);
      stream.abort(err.code, err.message);
      throw err;
    }
    await sendOrRefusal(stream, () => stream.end());
    let reply: unknown;
    try {
      for await (const c of stream) reply = decode(c);
    } catch (e) {
      // The leader's own refusals (bad file, conflict) pass on as they are. Losing the leader after the
      // whole upload went out is not a server bug (it answered 500): the restore may have committed.
      throw connectionLost(e, "after the upload; the restore may or may not have been applied: check the state before retrying");
    }
    if (reply === undefined) throw new EdgeError("RPC", "restore stream ended without a reply");
    return reply;
  }
}

/** Re-chunk any byte stream into frames of at most `max` bytes (copying only when splitting). */
export async function* rechunk(src: AsyncIterable<Uint8Array>, max = UPLOAD_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    for (let off = 0; off < c.byteLength; off += max) yield c.subarray(off, Math.min(c.byteLength, off + max));
  }
}

/** A ReadableStream as chunks, aborting when no chunk arrives for `idleMs`. */
export async function* idleBounded(body: ReadableStream<Uint8Array>, idleMs: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      if (signal?.aborted) throw new EdgeError("ABORTED", "upload aborted by the client");
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await withDeadline(
          reader.read(),
          idleMs,
          () => new EdgeError("BAD_REQUEST", `upload idle for ${formatDuration(idleMs)}; aborted`),
        );
      } catch (e) {
        if (e instanceof EdgeError) throw e;
        throw new EdgeError("ABORTED", `upload aborted: ${(e as Error).message}`);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Run a send on the upload stream. The leader may refuse before it reads the upload (permission
 * denied, another restore running): it sends an error frame and resets, and our next send fails
 * with "reset by peer". The leader's reason, still readable on the stream, is then the answer.
 */
async function sendOrRefusal(stream: RpcStream, send: () => Promise<void>): Promise<void> {
  try {
    await send();
  } catch (e) {
    let refusal: unknown;
    try {
      // The stream has failed, so this drains what arrived before the reset and then throws.
      for await (const _ of stream) {
        // a reply cannot precede the end of the upload; nothing to keep
      }
    } catch (r) {
      if (r instanceof RpcError && r.code !== "ABORTED") refusal = r;
    }
    throw refusal ?? e;
  }
}

/** A transport failure talking to the leader (its refusals pass through unchanged) as a 503 saying what it means. */
function connectionLost(e: unknown, what: string): unknown {
  if (!hasCode(e, "ABORTED", "DISCONNECTED")) return e;
  return new EdgeError("UNAVAILABLE", `lost the connection to the leader ${what} (${(e as Error).message})`);
}
