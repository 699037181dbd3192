// Raft traffic between servers over the pooled mux sessions: one long-lived
// outbound stream per peer carrying batches of messages (bounded queue, dropped
// when full — raft retries), and snapshot sends streamed in chunks on their own stream.
import { z } from "zod";
import { decode, encode } from "../lib/codec.ts";
import { release } from "../lib/release.ts";
import type { Logger } from "../lib/logger.ts";
import { isWellFormed, type Message } from "../raft/message.ts";
import type { NodeId } from "../raft/storage.ts";
import type { ConnPool } from "../transport/pool.ts";
import type { PeerIdentity } from "../transport/peer_identity.ts";
import type { RpcServer } from "../transport/rpc_server.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import type { Metrics } from "./metrics.ts";
import { withDeadline } from "../lib/deadline.ts";

const MAX_QUEUED_MESSAGES = 4096;
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

/**
 * Bounds on a snapshot send. A receiver that stops reading (its handler stuck, its disk hung) keeps
 * its mux session alive, answering pings, while the stream's window stays shut: without a bound the
 * leader held that follower in snapshot state for good. A failed send is reported to raft, which
 * tries again later.
 */
export interface SnapshotSendBounds {
  /** No chunk accepted for this long: give up (default 60 s, as an idle restore upload). */
  idleMs: number;
  /** After the last byte, the receiver's answer that the snapshot is durable and applied (default 10 min: a 1 GiB state builds in well under that). */
  installMs: number;
}
const DEFAULT_SNAPSHOT_BOUNDS: SnapshotSendBounds = { idleMs: 60_000, installMs: 600_000 };

function approxSize(m: Message): number {
  let n = 64;
  for (const e of m.entries) n += e.data.byteLength + 24;
  return n;
}

class PeerSender {
  private queue: Message[] = [];
  private bytes = 0;
  private stream: RpcStream | undefined;
  private pumping = false;
  private failures = 0;
  private closed = false;
  private retryAt = 0;

  constructor(
    readonly id: NodeId,
    public address: string,
    private readonly self: () => NodeId,
    private readonly selfAddress: () => string,
    private readonly cluster: () => string,
    private readonly pool: ConnPool,
    private readonly onUnreachable: (id: NodeId) => void,
    private readonly logger: Logger,
  ) {}

  enqueue(m: Message): void {
    if (this.closed) return;
    const size = approxSize(m);
    if (this.queue.length >= MAX_QUEUED_MESSAGES || this.bytes + size > MAX_QUEUED_BYTES) {
      // Dropping is safe: raft re-sends; telling the core makes it probe again.
      this.onUnreachable(this.id);
      return;
    }
    this.queue.push(m);
    this.bytes += size;
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        if (!this.stream) {
          const wait = this.retryAt - performance.now();
          if (wait > 0) await Bun.sleep(wait);
          try {
            this.stream = await this.pool.openStream(
              this.address,
              "Raft.Messages",
              { from: this.self(), address: this.selfAddress(), cluster: this.cluster() },
              { timeoutMs: 2000 },
            );
            void this.drainReplies(this.stream);
          } catch (e) {
            this.fail(e);
            continue;
          }
        }
        const batch: Message[] = [];
        let size = 0;
        while (this.queue.length > 0 && size < MAX_BATCH_BYTES) {
          const m = this.queue.shift()!;
          const s = approxSize(m);
          this.bytes -= s;
          size += s;
          batch.push(m);
        }
        try {
          await this.stream.send(encode(batch));
          this.failures = 0;
        } catch (e) {
          this.fail(e);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async drainReplies(s: RpcStream): Promise<void> {
    try {
      for await (const _ of s) {
        // The receiver never answers on this stream; iterating notices when it closes.
      }
    } catch {
      // reported through send failures
    }
    if (this.stream === s) this.stream = undefined;
  }

  private fail(e: unknown): void {
    this.failures++;
    const backoff = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.failures, 10));
    this.retryAt = performance.now() + backoff * (0.5 + Math.random() / 2);
    if (this.failures === 1 || this.failures % 50 === 0)
      this.logger.debug("raft peer unreachable", { peer: this.id, address: this.address, error: (e as Error).message });
    const s = this.stream;
    this.stream = undefined;
    if (s) s.abort("RPC", "peer stream failed");
    // Messages queued for a dead stream are stale by the time it returns.
    this.queue = [];
    this.bytes = 0;
    this.onUnreachable(this.id);
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.stream?.abort("UNAVAILABLE", "peer removed");
    this.stream = undefined;
  }
}

export interface SnapshotSource {
  /** The snapshot to send for a "snap" message: its byte stream, each chunk a buffer of its own (released once sent). */
  open(m: Message): AsyncIterable<Uint8Array>;
}
export interface SnapshotSink {
  /** Receive a snapshot streamed by the leader; resolves when it is durable in the snapshot store. */
  receive(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/**
 * Who may speak raft to this server (Server implements it). A stream is checked when it opens, with
 * the sender it names, the cluster id it carries and the session's proven identity; every message on
 * it must then be from that sender, and the sender must be admitted per message (membership changes
 * under a long-lived stream). A reason is a metric label: the stream is refused, or the message dropped.
 */
export interface RaftAdmission {
  stream(from: NodeId, cluster: string, peer: PeerIdentity): string | undefined;
  message(from: NodeId): string | undefined;
  dropped(reason: string, from: NodeId): void;
}

/** The stream-open arguments of Raft.Messages; `cluster` is the sender's cluster id ("" before it has one). */
const RaftStreamArgs = z.object({
  from: z.string().min(1).max(256),
  address: z.string().max(512).optional(),
  cluster: z.string().max(64).optional(),
});

export class PeerTransport {
  private peers = new Map<NodeId, PeerSender>();
  /**
   * Addresses peers announced when they opened their raft stream to us. A server that is not yet in
   * its own configuration (formation raced with a peer's first message, or a join) answers through
   * these until the configuration names the sender. Bounded; the configuration always wins.
   */
  private learned = new Map<NodeId, string>();
  private static readonly MAX_LEARNED = 64;

  constructor(
    private readonly selfId: () => NodeId,
    private readonly pool: ConnPool,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly onUnreachable: (id: NodeId) => void,
    private readonly selfAddress: () => string = () => "",
    private readonly snapshotBounds: SnapshotSendBounds = DEFAULT_SNAPSHOT_BOUNDS,
    private readonly cluster: () => string = () => "",
  ) {}

  /** Register the inbound side on the RPC server; `admit` decides who may speak (undefined: everyone, as in unit tests of the transport). */
  register(rpc: RpcServer, step: (m: Message) => void, sink: SnapshotSink, admit?: RaftAdmission): void {
    rpc.stream("Raft.Messages", RaftStreamArgs, async (args, ctx, stream) => {
      const refused = admit?.stream(args.from, args.cluster ?? "", ctx.peer);
      if (refused !== undefined) {
        admit?.dropped(refused, args.from);
        stream.abort("PERMISSION_DENIED", `raft messages from ${args.from} refused: ${refused}`);
        return;
      }
      // Learned only from an admitted stream: an address announced by anyone else would steer replies.
      if (args.address && (this.learned.has(args.from) || this.learned.size < PeerTransport.MAX_LEARNED))
        this.learned.set(args.from, args.address);
      for await (const chunk of stream) {
        let batch: unknown;
        try {
          batch = decode(chunk);
        } catch {
          stream.abort("BAD_REQUEST", "malformed raft frame");
          return;
        }
        if (!Array.isArray(batch)) {
          stream.abort("BAD_REQUEST", "raft frame is not a batch");
          return;
        }
        for (const m of batch) {
          if (!isWellFormed(m)) {
            this.metrics.inc("edgenode_raft_malformed_messages_total");
            continue;
          }
          if (m.to !== this.selfId()) continue;
          // The stream is bound to the sender it opened as: a message claiming another is not that server's.
          const why = m.from !== args.from ? "sender_mismatch" : admit?.message(m.from);
          if (why !== undefined) {
            admit?.dropped(why, m.from);
            continue;
          }
          step(m);
        }
      }
    });
    rpc.stream(
      "Raft.InstallSnapshot",
      z.object({ message: z.unknown(), cluster: z.string().max(64).optional() }),
      async (args, ctx, stream) => {
        const m = args.message;
        if (!isWellFormed(m) || m.type !== "snap" || !m.snapshot) {
          stream.abort("BAD_REQUEST", "malformed snapshot message");
          return;
        }
        const refused = admit ? (admit.stream(m.from, args.cluster ?? "", ctx.peer) ?? admit.message(m.from)) : undefined;
        if (refused !== undefined) {
          admit?.dropped(refused, m.from);
          stream.abort("PERMISSION_DENIED", `snapshot from ${m.from} refused: ${refused}`);
          return;
        }
        // Stored before raft sees it: one meant for another server must not land in this one's store.
        if (m.to !== this.selfId()) {
          stream.abort("BAD_REQUEST", `snapshot message is for ${m.to}, not this server`);
          return;
        }
        await sink.receive(m, stream);
        step(m);
        await stream.end();
      },
    );
  }

  setPeers(peers: { id: NodeId; address: string }[]): void {
    const want = new Map(peers.filter((p) => p.id !== this.selfId()).map((p) => [p.id, p.address]));
    for (const [id, s] of this.peers) {
      if (!want.has(id)) {
        s.close();
        this.peers.delete(id);
      }
    }
    for (const [id, address] of want) {
      const s = this.peers.get(id);
      if (s) s.address = address;
      else this.peers.set(id, this.sender(id, address));
    }
  }

  private sender(id: NodeId, address: string): PeerSender {
    return new PeerSender(id, address, this.selfId, this.selfAddress, this.cluster, this.pool, this.onUnreachable, this.logger);
  }

  addressOf(id: NodeId): string | undefined {
    return this.peers.get(id)?.address;
  }

  send(m: Message): void {
    let p = this.peers.get(m.to);
    const learned = p ? undefined : this.learned.get(m.to);
    if (!p && learned && m.to !== this.selfId()) {
      p = this.sender(m.to, learned);
      this.peers.set(m.to, p);
    }
    if (!p) {
      this.onUnreachable(m.to);
      return;
    }
    this.metrics.inc("edgenode_raft_messages_sent_total", { type: m.type });
    p.enqueue(m);
  }

  async sendSnapshot(m: Message, source: SnapshotSource): Promise<boolean> {
    const address = this.peers.get(m.to)?.address;
    if (!address) return false;
    const t0 = performance.now();
    let stream: RpcStream | undefined;
    try {
      stream = await this.pool.openStream(
        address,
        "Raft.InstallSnapshot",
        { message: { ...m, entries: [] }, cluster: this.cluster() },
        { timeoutMs: 5000 },
      );
      const s = stream;
      const { idleMs, installMs } = this.snapshotBounds;
      let bytes = 0;
      for await (const chunk of source.open(m)) {
        await withDeadline(s.send(chunk), idleMs, `peer accepted no snapshot bytes for ${idleMs} ms`);
        bytes += chunk.byteLength;
        // Sent (the socket has its copy) and read into a fresh buffer for this loop alone.
        release(chunk);
      }
      await withDeadline(s.end(), idleMs, `peer accepted no snapshot bytes for ${idleMs} ms`);
      // The receiver ends its side only once the snapshot is durable and stepped.
      const answered = (async () => {
        for await (const _ of s) {
          // no payload expected
        }
      })();
      await withDeadline(answered, installMs, `peer did not confirm the snapshot within ${installMs} ms of its last byte`);
      this.logger.info("snapshot sent", { peer: m.to, index: m.snapshot?.index ?? 0, bytes, ms: Math.round(performance.now() - t0) });
      this.metrics.inc("edgenode_raft_snapshots_sent_total", { outcome: "ok" });
      return true;
    } catch (e) {
      this.logger.warn("snapshot send failed", { peer: m.to, error: (e as Error).message });
      this.metrics.inc("edgenode_raft_snapshots_sent_total", { outcome: "error" });
      stream?.abort("RPC", "snapshot send failed");
      return false;
    }
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}
