// Snapshot restore through consensus. Any server accepts the upload and streams
// it (bounded chunks, backpressure, explicit end frame) to its region's leader.
// The leader spools the file as it arrives, verifying it and building its state
// in the same pass, then stages it on a quorum of voters (each builds the state
// as the file arrives, checks size and SHA-256 and fsyncs), then commits a
// restore entry; every server swaps its state when it applies that entry —
// fetching the staged file from a peer if it lacks it — so no server ever
// exposes a state the cluster could lose, and a crash at any point leaves all
// servers on wholly old or new.
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { assert } from "../lib/assert.ts";
import { decode, encode } from "../lib/codec.ts";
import { release } from "../lib/release.ts";
import { formatDuration } from "../lib/duration.ts";
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError, toEdgeError } from "../lib/errors.ts";
import type { QueryOptions } from "../http/backend.ts";
import { EntryType } from "../raft/storage.ts";
import { FORMAT_VERSION, SnapshotFormatError } from "../snapshot/format.ts";
import { readSnapshot, readSnapshotHeader, type VerifyResult } from "../snapshot/reader.ts";
import { RECORD_BATCHES, RestoreError, type BatchedRecords } from "../state/restore.ts";
import { TABLES } from "../state/tables.ts";
import { StateStore } from "../state/state_store.ts";
import { RpcError } from "../transport/rpc_error.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import type { ServerOp } from "./fsm.ts";
import type { Server } from "./server.ts";
import { SpoolThrough, checkStagedId, type StagedSnapshots } from "./staged_snapshots.ts";

/** Frames of the upload stream are at most this big (the HTTP body is re-chunked to it). */
export const UPLOAD_CHUNK_BYTES = 64 * 1024;
/** A relaying server checks its RSS after forwarding this many upload bytes... */
const RELAY_CHECK_BYTES = 4 * 1024 * 1024;
/** ...and collects garbage once it has grown by this much since the upload began. */
const RELAY_RSS_SLACK = 32 * 1024 * 1024;
/** An upload that delivers nothing for this long is aborted. */
export const UPLOAD_IDLE_MS = 60_000;
/** Establishing leadership again after the swap must finish within this. */
export const REASSERT_BOUND_MS = 60_000;
const STAGE_MIN_TIMEOUT_MS = 30_000;
/** Staging deadline grows with size at a pessimistic 10 MB/s. */
const STAGE_BYTES_PER_MS = 10_000;
const FETCH_RETRY_MS = 1_000;
/**
 * A state built ahead for a restore whose entry has not applied by then is let go: its entry applies within
 * a round trip of the staging, or the restore failed (the leader crashed before proposing it, say) and the
 * state, as big as the whole store, would otherwise be held until the next restore. Should the entry apply
 * after all, the state is built again from the staged file.
 */
export const PREPARED_TTL_MS = 10 * 60_000;
/** Restores the leader gave up on, remembered so that a staging still ending here keeps nothing of them. */
const MAX_DROPPED_IDS = 64;

/**
 * Test hook for the crash matrix: the name of a file in the data dir. While that file names a phase, a
 * restore reaching that phase here logs "test hook: paused at restore phase" and waits (raft goes on),
 * so a test kills a server provably in that phase. Unset, as in production, a phase point does nothing.
 */
const PAUSE_FILE = process.env.EDGENODE_TEST_PAUSE_FILE || undefined;
const PAUSE_POLL_MS = 10;
/**
 * upload: the leader holds part of the upload. verified: the leader verified and built the whole file,
 * nothing is staged. stage: this peer holds the staged file durably and has not answered the leader.
 * staged: a quorum holds the file, the entry is not proposed. apply: the entry is committed and applying
 * here, the old state still served. swapped: the new state is in place here (on the leader, before it answers).
 */
export type RestorePhase = "upload" | "verified" | "stage" | "staged" | "apply" | "swapped";

export type RestoreOp = Extract<ServerOp, { op: "restore" }>;

export interface DryRunReply {
  Index: number;
  Term: number;
  Region: string;
  Producer: string;
  Version: number;
  Created: string;
  ID: string;
  Size: number;
  Counts: Record<string, number>;
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
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new EdgeError("BAD_REQUEST", `upload idle for ${formatDuration(idleMs)}; aborted`)), idleMs);
      });
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await Promise.race([reader.read(), idle]);
      } catch (e) {
        if (e instanceof EdgeError) throw e;
        throw new EdgeError("ABORTED", `upload aborted: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

export class RestoreCoordinator {
  private running = false;
  /**
   * Restores applied here, by staged id, so their files can be dropped once a snapshot covers them.
   * Seeded at start from the staged directory's notes (StagedSnapshots.markApplied).
   */
  private readonly appliedAt: Map<string, number>;
  /**
   * The new state being built (or built) from a staged file, one restore at a time, so that applying the
   * entry is a swap, or a wait for the build already under way. The leader builds it while the upload
   * arrives; a staging peer from the staged file once it has answered. The applier waits on it apart
   * from the raft loop (RaftDriver), so a follower still building keeps acknowledging and voting.
   */
  private prepared: { id: string; sha256: string; store: Promise<StateStore> } | undefined;
  private preparedTimer: ReturnType<typeof setTimeout> | undefined;
  /** Ids of restores the leader gave up on before proposing them (Snapshot.Unstage), oldest first. */
  private readonly dropped = new Set<string>();
  /** Bumped when a background build is no longer wanted (a newer restore, or another one applied). */
  private buildSeq = 0;

  private readonly preparedTtlMs: number;

  constructor(
    private readonly s: Server,
    readonly staged: StagedSnapshots,
    applied: ReadonlyMap<string, number> = new Map(),
    opts: { preparedTtlMs?: number } = {},
  ) {
    this.appliedAt = new Map(applied);
    this.preparedTtlMs = opts.preparedTtlMs ?? PREPARED_TTL_MS;
    assert(Number.isSafeInteger(this.preparedTtlMs) && this.preparedTtlMs > 0, "preparedTtlMs is a positive integer");
  }

  /** The restore whose new state is being built or held here, if any (for tests and diagnostics). */
  get preparedId(): string | undefined {
    return this.prepared?.id;
  }

  /** Entry point on any server: forwards to the region, then the leader, or runs the restore. */
  /** `owned`: nothing else holds the chunks once yielded, so the leader's reader may release them. */
  async restore(
    chunks: AsyncIterable<Uint8Array>,
    opts: { dryRun: boolean; q: QueryOptions & { hops?: number }; owned?: boolean },
  ): Promise<unknown> {
    // Only opening the stream may move on to another server of the region: no upload byte is read yet.
    const placed = await this.s.placement.run<{ reply: unknown } | { stream: RpcStream }>(opts.q, () => true, {
      here: async () => ({ reply: await this.lead(chunks, opts) }),
      send: async (addr, hops) => ({
        stream: await this.s.pool.openStream(
          addr,
          "Snapshot.Restore",
          { dryRun: opts.dryRun, q: { ...opts.q, hops } },
          { timeoutMs: 10_000 },
        ),
      }),
    });
    return "reply" in placed ? placed.reply : this.forward(placed.stream, chunks);
  }

  private async forward(stream: RpcStream, chunks: AsyncIterable<Uint8Array>): Promise<unknown> {
    try {
      let floor = process.memoryUsage.rss();
      let sinceCheck = 0;
      let collections = 0;
      let relayed = 0;
      for await (const c of rechunk(chunks)) {
        await this.sendOrRefusal(stream, () => stream.send(c)).catch((e: unknown) => {
          // A leader lost mid-upload never had the whole file: nothing was restored (503, not a 500).
          throw connectionLost(e, "during the upload; nothing was restored, retry");
        });
        // Every chunk passes through as short-lived garbage (body chunk, CBOR frame) and JSC collects
        // lazily: at disk speed the relay's RSS swelled by ~80-90 MiB (whatever the file's size) before
        // a collection. Collect when it has grown by RELAY_RSS_SLACK, keeping it under the 64 MiB budget;
        // a lazy hint (Bun.gc(false)) was measured not to help.
        relayed += c.byteLength;
        sinceCheck += c.byteLength;
        if (sinceCheck >= RELAY_CHECK_BYTES) {
          sinceCheck = 0;
          if (process.memoryUsage.rss() - floor > RELAY_RSS_SLACK) {
            Bun.gc(true);
            collections++;
            // What a collection could not give back is not garbage: never collect in a loop over it.
            floor = Math.max(floor, process.memoryUsage.rss() - RELAY_RSS_SLACK / 2);
          }
        }
      }
      this.s.log.info("restore: upload relayed to the leader", { bytes: relayed, collections });
    } catch (e) {
      // The upload failed on our side: the leader must see an abort, never a clean end. A leader lost
      // mid-upload never had the whole file, so nothing was restored: 503, not a server error.
      const err =
        (e as { code?: unknown })?.code === "SESSION_CLOSED"
          ? new EdgeError(
              "UNAVAILABLE",
              `lost the connection to the leader during the upload (${(e as Error).message}); nothing was restored, retry`,
            )
          : toEdgeError(e);
      stream.abort(err.code, err.message);
      throw err;
    }
    await this.sendOrRefusal(stream, () => stream.end());
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

  /** The RPC side: receive an upload from a peer and answer with one reply frame. */
  async serve(args: { dryRun: boolean; q: QueryOptions & { hops?: number } }, stream: RpcStream): Promise<void> {
    // An RPC stream's chunks are ours alone once read (FrameReader), unlike an HTTP body's.
    const reply = await this.restore(stream, { ...args, owned: true });
    await stream.send(encode(reply));
    await stream.end();
  }

  /**
   * Run a send on the upload stream. The leader may refuse before it reads the upload (permission
   * denied, another restore running): it sends an error frame and resets, and our next send fails
   * with "reset by peer". The leader's reason, still readable on the stream, is then the answer.
   */
  private async sendOrRefusal(stream: RpcStream, send: () => Promise<void>): Promise<void> {
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

  /**
   * The test hook: wait here while the pause file names `phase`. Callers test PAUSE_FILE first, so that
   * without it not even a microtask is added to the restore's path.
   */
  private async phase(phase: RestorePhase, fields: Record<string, unknown> = {}): Promise<void> {
    if (!PAUSE_FILE) return;
    const dataDir = this.s.cfg.data_dir;
    if (!dataDir) return;
    const file = join(dataDir, PAUSE_FILE);
    const named = () => {
      try {
        return readFileSync(file, "utf8").trim() === phase;
      } catch {
        return false;
      }
    };
    if (!named()) return;
    this.s.log.warn("test hook: paused at restore phase", { phase, ...fields });
    while (named()) await Bun.sleep(PAUSE_POLL_MS);
    this.s.log.warn("test hook: resumed", { phase });
  }

  /** `chunks`, pausing at phase "upload" once the first has passed on (test hook only). */
  private async *pauseAfterFirst(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let bytes = 0;
    let n = 0;
    for await (const c of chunks) {
      if (n++ === 1) await this.phase("upload", { bytes });
      bytes += c.byteLength;
      yield c;
    }
  }

  // ---- on the leader ----

  private async lead(chunks: AsyncIterable<Uint8Array>, opts: { dryRun: boolean; q: QueryOptions; owned?: boolean }): Promise<unknown> {
    const s = this.s;
    await s.authorizeCall("Operator.SnapshotRestore", {}, opts.q.token);
    if (this.running) throw new EdgeError("CONFLICT", "another snapshot restore is in progress; one restore at a time");
    this.running = true;
    const t0 = performance.now();
    const tmp = this.staged.tempPath("upload");
    let outcome = "error";
    let bytes = 0;
    try {
      // 1-2. Spool the upload to disk as it arrives and, in the same pass, verify the file and build the
      //    state it holds, before anything changes: the reader checks frame CRCs, counts and the SHA-256
      //    as it goes (and that nothing follows the trailer, so it consumes the whole upload), and the
      //    store is kept only if the pass ends cleanly; a file whose records the state machine would
      //    refuse is refused here too. Each chunk reaches the reader only once it is in the spool. Done
      //    one after the other, receiving and verifying took 0.96 s + 1.35 s for 77 MB (scratch probe of
      //    the bench's restore, leader log); two passes of verify, then build, had cost a second more.
      let v: VerifyResult;
      let trialStore: StateStore;
      const sp = await SpoolThrough.create(tmp);
      const upload = sp.through(PAUSE_FILE ? this.pauseAfterFirst(chunks) : chunks, (size) => {
        bytes = size;
        s.log.info("restore: received", { bytes: size });
      });
      try {
        const trial = readSnapshot(upload, { release: opts.owned === true });
        await trial.header;
        trialStore = await StateStore.restore(trial.records, 1);
        const read = trial.result;
        if (!read) throw new SnapshotFormatError("the snapshot's records ended before its checks completed");
        v = read;
        bytes = await sp.finish();
        assert(bytes === v.size, () => `spooled ${bytes} bytes, the reader verified ${v.size}`);
      } catch (e) {
        // A flaw found early is answered at once, with the rest of the upload unread: closing the
        // iterator cancels the stream it comes from. curl -T and fetch both report the 400 and its
        // reason though still sending (snapshot_refused.test.ts, "a flaw near the start").
        await upload.return(undefined).catch(() => undefined);
        await sp.abort();
        if (e instanceof RestoreError || e instanceof SnapshotFormatError) {
          outcome = "invalid";
          throw new EdgeError("BAD_SNAPSHOT", `invalid snapshot: ${e.message}`);
        }
        throw e;
      }
      const up = { size: v.size, sha256: v.sha256 };
      if (v.header.formatVersion > FORMAT_VERSION) {
        outcome = "invalid";
        throw new EdgeError(
          "BAD_SNAPSHOT",
          `snapshot format version ${v.header.formatVersion} is newer than this server's ${FORMAT_VERSION}`,
        );
      }
      s.log.info("restore: verified", {
        sha256: v.sha256,
        index: v.header.index,
        term: v.header.term,
        region: v.header.region,
        producer: v.header.producer,
        records: v.records,
      });
      if (opts.dryRun) {
        outcome = "dry-run";
        const r: DryRunReply = {
          Index: v.header.index,
          Term: v.header.term,
          Region: v.header.region,
          Producer: v.header.producer,
          Version: v.header.formatVersion,
          Created: v.header.created,
          ID: v.header.snapshotId,
          Size: v.size,
          Counts: v.counts,
        };
        return r;
      }
      if (s.membershipChangePending())
        throw new EdgeError("CONFLICT", "a membership change is in progress; retry the restore once it completes");
      if (PAUSE_FILE) await this.phase("verified");
      // 3. Stage on a quorum of voters.
      const id = crypto.randomUUID();
      await this.staged.adopt(id, tmp);
      this.buildSeq++;
      this.hold(id, up.sha256, Promise.resolve(trialStore));
      const staged = await this.stageOnPeers(id, up.sha256, up.size);
      s.log.info("restore: staged", { id, servers: staged.ok, voters: staged.voters });
      if (staged.ok < staged.quorum) {
        // Never proposed, so never to be applied anywhere: nothing of it need be kept, here or on the
        // peers that did stage it (each would otherwise hold the file, and the state built from it).
        this.drop(id);
        await this.staged.remove(id);
        void this.unstageOnPeers(id);
        throw new EdgeError(
          "UNAVAILABLE",
          `snapshot staged on ${staged.ok} of ${staged.voters} voters, a quorum needs ${staged.quorum}; nothing was changed`,
        );
      }
      if (PAUSE_FILE) await this.phase("staged", { id });
      // 4. Commit the restore; every server swaps when it applies the entry. The proposal resolves
      //    once this server applied it (and rebuilt its leader state).
      const op: RestoreOp = { op: "restore", snapshotId: id, sha256: up.sha256, size: up.size, now: Date.now() };
      // No fixed timeout: the entry commits in raft time, and the swap is prepared already.
      const proposal = s.proposeCommand(op, 3600_000);
      // In this server's raft log now (proposing is synchronous), not yet committed.
      s.log.info("restore: proposed", { id });
      const result = (await proposal) as { Index: number };
      outcome = "ok";
      s.log.info("restore: done", { index: result.Index, bytes: up.size, ms: Math.round(performance.now() - t0) });
      return result;
    } finally {
      this.running = false;
      await rm(tmp, { force: true });
      s.stats.inc("edgenode_snapshot_restore_total", { outcome }, 1, "snapshot restores by outcome");
      s.stats.inc("edgenode_snapshot_restore_bytes_total", {}, bytes, "bytes of snapshot restores received");
      s.stats.observe(
        "edgenode_snapshot_restore_ms",
        performance.now() - t0,
        {},
        "snapshot restore duration (ms)",
        [10, 100, 1000, 10_000, 60_000, 600_000],
      );
    }
  }

  private async stageOnPeers(id: string, sha256: string, size: number): Promise<{ ok: number; voters: number; quorum: number }> {
    const s = this.s;
    const servers = s.currentConfig().servers;
    const voters = servers.filter((x) => x.voter);
    const quorum = Math.floor(voters.length / 2) + 1;
    const timeoutMs = STAGE_MIN_TIMEOUT_MS + size / STAGE_BYTES_PER_MS;
    const others = servers.filter((x) => x.id !== s.nodeId);
    const results = await Promise.allSettled(
      others.map(async (peer) => {
        let st: RpcStream | undefined;
        let gaveUp = false;
        try {
          return await withDeadline(
            (async () => {
              st = await s.pool.openStream(peer.address, "Snapshot.Stage", { id, sha256, size }, { timeoutMs: 5_000 });
              for await (const c of this.staged.open(id)) {
                if (gaveUp) throw new EdgeError("TIMEOUT", "staging given up");
                await st.send(c);
                release(c);
              }
              await st.end();
              for await (const _ of st) {
                // the peer ends its side once the file is durable, checked and built
              }
              return peer;
            })(),
            timeoutMs,
            `staging on ${peer.address} timed out after ${formatDuration(Math.round(timeoutMs))}`,
          );
        } catch (e) {
          // Also on the deadline: the send loop stops, and the peer drops what it received.
          gaveUp = true;
          st?.abort("ABORTED", "staging failed");
          throw e;
        }
      }),
    );
    let ok = 1; // this leader holds it
    for (const [i, r] of results.entries()) {
      const peer = others[i]!;
      if (r.status === "fulfilled") {
        if (peer.voter) ok++;
      } else s.log.warn("restore: staging on a peer failed", { peer: peer.address, error: (r.reason as Error)?.message });
    }
    return { ok, voters: voters.length, quorum };
  }

  /** RPC: a peer (the leader) stages a file here. */
  async receiveStage(args: { id: string; sha256: string; size: number }, stream: RpcStream): Promise<void> {
    const t0 = performance.now();
    // Answer once the file is durable, matches and is one this server can read; build the state it
    // holds after, from the file. The leader proposes once staging has ended on every peer (and a quorum
    // of voters holds the file), so the commit waits on disk and network, not on every server's build:
    // building while receiving paced the staging at the build's rate, and the leader's answer waited for
    // the slowest follower's whole build (15 s of a 31 s restore of 1M variables here). Applying the entry
    // then waits for the build on the applier, apart from the raft loop (RaftDriver), so a follower
    // still building goes on acknowledging and voting.
    // The stream's chunks are ours alone once read (FrameReader).
    await this.staged.receive(args.id, stream, { sha256: args.sha256, size: args.size }, { release: true });
    try {
      // A file this server cannot read (a newer format, a table it does not know) fails the staging here,
      // before anything is committed. Its records were checked by the leader, which runs the same checks.
      const header = await readSnapshotHeader(this.staged.open(args.id));
      const unknown = Object.keys(header.counts).filter((t) => !(TABLES as readonly string[]).includes(t) && header.counts[t] !== 0);
      if (unknown.length > 0) throw new EdgeError("BAD_SNAPSHOT", `snapshot holds tables this server does not know: ${unknown.join(", ")}`);
    } catch (e) {
      await this.staged.remove(args.id);
      throw e instanceof SnapshotFormatError ? new EdgeError("BAD_SNAPSHOT", `invalid snapshot: ${e.message}`) : e;
    }
    if (this.dropped.has(args.id)) {
      await this.staged.remove(args.id);
      throw new EdgeError("ABORTED", `the leader gave up on restore ${args.id}`);
    }
    this.s.log.info("restore: staged here", { id: args.id, bytes: args.size, ms: Math.round(performance.now() - t0) });
    if (PAUSE_FILE) await this.phase("stage", { id: args.id });
    await stream.end();
    // A staging that outlived the leader's deadline may end after the entry applied here (it then built
    // from a fetched copy), or after the leader gave the restore up: building would hold a whole state
    // for nothing.
    if (!this.appliedAt.has(args.id) && !this.dropped.has(args.id)) this.prepare(args.id, args.sha256);
  }

  /** Tell every peer to drop restore `id`, which this leader will never propose. Best effort. */
  private async unstageOnPeers(id: string): Promise<void> {
    const s = this.s;
    await Promise.all(
      s
        .currentConfig()
        .servers.filter((p) => p.id !== s.nodeId)
        .map((p) =>
          s.pool.call(p.address, "Snapshot.Unstage", { id }, { timeoutMs: 5_000 }).catch((e: unknown) => {
            s.log.warn(
              "restore: could not tell a peer to drop a restore that was never proposed; it lets its built state go after a while, its file at a restart a day on",
              { peer: p.address, id, error: (e as Error).message },
            );
          }),
        ),
    );
  }

  /** RPC: the leader gave up on restore `id` before proposing it; drop its staged file and built state. */
  async unstage(args: { id: string }): Promise<{ Dropped: boolean }> {
    checkStagedId(args.id);
    // A restore applied here was committed: its file stays for the usual cleanup (peers may fetch it).
    if (this.appliedAt.has(args.id)) throw new EdgeError("CONFLICT", `restore ${args.id} was applied here; its staged file is kept`);
    this.drop(args.id);
    const had = this.staged.has(args.id);
    await this.staged.remove(args.id);
    this.s.log.info("restore: dropped a restore the leader gave up on", { id: args.id, file: had });
    return { Dropped: had };
  }

  /** Forget restore `id`: remember it is given up, and let go of any state built for it. */
  private drop(id: string): void {
    this.dropped.add(id);
    while (this.dropped.size > MAX_DROPPED_IDS) this.dropped.delete(this.dropped.values().next().value!);
    if (this.prepared?.id === id) {
      this.buildSeq++;
      this.clearPrepared();
    }
  }

  /** Keep `store` as the state to swap in when restore `id` applies, for at most preparedTtlMs. */
  private hold(id: string, sha256: string, store: Promise<StateStore>): void {
    this.clearPrepared();
    this.prepared = { id, sha256, store };
    this.preparedTimer = setTimeout(() => {
      if (this.prepared?.id !== id) return;
      this.s.log.warn(
        "restore: letting go of the state built ahead for a restore whose entry has not applied; it is built from the staged file if the entry does apply",
        { id, after: formatDuration(this.preparedTtlMs) },
      );
      this.buildSeq++;
      this.clearPrepared();
    }, this.preparedTtlMs);
    this.preparedTimer.unref?.();
  }

  private clearPrepared(): void {
    clearTimeout(this.preparedTimer);
    this.preparedTimer = undefined;
    this.prepared = undefined;
  }

  /** Build the state of a staged file in the background, for the restore entry's apply to swap in. */
  private prepare(id: string, sha256: string): void {
    const t0 = performance.now();
    const seq = ++this.buildSeq;
    const superseded = () => this.buildSeq !== seq;
    const store = (async () => {
      const reader = readSnapshot(this.staged.open(id), { release: true });
      await reader.header;
      const store = await StateStore.restore(abandonable(reader.records, superseded), 1);
      const got = reader.result;
      if (!got || got.sha256 !== sha256) throw new EdgeError("CORRUPT", `staged snapshot ${id} changed on disk`);
      this.s.log.info("restore: new state built", { id, ms: Math.round(performance.now() - t0) });
      return store;
    })();
    // Failures are handled where the store is awaited (apply builds from the file again); never unhandled.
    store.catch((e: unknown) => {
      if (!superseded())
        this.s.log.warn("restore: building the staged state failed; it is built again when the entry applies", {
          id,
          error: (e as Error).message,
        });
    });
    this.hold(id, sha256, store);
  }

  /** RPC: a peer lacking a staged file fetches it from us. */
  async serveStaged(args: { id: string }, stream: RpcStream): Promise<void> {
    if (!this.staged.has(args.id)) throw new EdgeError("NOT_FOUND", `staged snapshot ${args.id} is not on this server`);
    for await (const c of this.staged.open(args.id)) {
      await stream.send(c);
      release(c);
    }
    await stream.end();
  }

  // ---- on every server, when the restore entry applies ----

  async apply(index: number, op: RestoreOp): Promise<{ Index: number }> {
    const s = this.s;
    if (PAUSE_FILE) await this.phase("apply", { index, id: op.snapshotId });
    const t0 = performance.now();
    const prepared = this.prepared?.id === op.snapshotId && this.prepared.sha256 === op.sha256 ? this.prepared.store : undefined;
    // Whatever else was being built is of a restore that never committed (or not here): let it go.
    if (!prepared) this.buildSeq++;
    this.clearPrepared();
    const ready = prepared ? await prepared.catch(() => undefined) : undefined;
    if (ready) {
      s.fsm.replaceStore(ready.restamped(index));
      return this.finishApply(index, op, t0);
    }
    for (let attempt = 0; ; attempt++) {
      if (!this.staged.has(op.snapshotId)) await this.fetch(op);
      try {
        // Build the new store from the staged file; the old one stays live until this succeeds.
        const reader = readSnapshot(this.staged.open(op.snapshotId), { release: true });
        await reader.header;
        const store = await StateStore.restore(reader.records, index);
        const got = reader.result;
        if (!got || got.size !== op.size || got.sha256 !== op.sha256) {
          throw new EdgeError("CORRUPT", `staged snapshot ${op.snapshotId} does not match the committed digest`);
        }
        s.fsm.replaceStore(store);
        break;
      } catch (e) {
        // The same file fails the same way everywhere: a deterministic refusal, state unchanged.
        if (e instanceof RestoreError) {
          s.log.error("restore: the committed snapshot's state is invalid; keeping the current state", { index, error: e.message });
          throw new EdgeError("BAD_SNAPSHOT", e.message);
        }
        // A committed entry cannot be skipped: drop the bad copy and fetch a good one from a peer.
        s.log.error("restore: staged file unusable; fetching it again", { id: op.snapshotId, error: (e as Error).message });
        await this.staged.remove(op.snapshotId);
        if (attempt > 1000) throw e;
        await Bun.sleep(FETCH_RETRY_MS);
      }
    }
    return this.finishApply(index, op, t0);
  }

  private async finishApply(index: number, op: RestoreOp, t0: number): Promise<{ Index: number }> {
    const s = this.s;
    this.appliedAt.set(op.snapshotId, index);
    s.log.info("restore: swapped", { index, ms: Math.round(performance.now() - t0) });
    if (PAUSE_FILE) await this.phase("swapped", { index, id: op.snapshotId });
    // Only housekeeping rides on the note, so failing to write it must not fail the apply. No cleanup can
    // drop the file meanwhile: that needs a raft snapshot at `index`, which waits for this apply to return.
    await this.staged
      .markApplied(op.snapshotId, index)
      .catch((e: unknown) =>
        s.log.warn(
          "restore: could not note the applied restore; its staged file stays until the day-old sweep if this server restarts first",
          { id: op.snapshotId, error: (e as Error).message },
        ),
      );
    s.afterRestoreApplied(index, op.snapshotId);
    if (s.driver?.isLeader) await this.reassert(index);
    return { Index: index };
  }

  private async reassert(index: number): Promise<void> {
    const s = this.s;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new EdgeError(
              "INTERNAL",
              `snapshot restored at index ${index}, but rebuilding the leader's state did not finish within ${formatDuration(REASSERT_BOUND_MS)}`,
            ),
          ),
        REASSERT_BOUND_MS,
      );
    });
    try {
      await Promise.race([s.reassertLeadership(), bound]);
      s.log.info("restore: leader state rebuilt", { index });
    } finally {
      clearTimeout(timer);
    }
  }

  private async fetch(op: RestoreOp): Promise<void> {
    const s = this.s;
    for (let round = 0; ; round++) {
      for (const peer of s.currentConfig().servers) {
        if (peer.id === s.nodeId) continue;
        try {
          const st = await s.pool.openStream(peer.address, "Snapshot.FetchStaged", { id: op.snapshotId }, { timeoutMs: 5_000 });
          await this.staged.receive(op.snapshotId, st, { sha256: op.sha256, size: op.size }, { release: true });
          s.log.info("restore: fetched staged snapshot", { id: op.snapshotId, from: peer.address });
          return;
        } catch (e) {
          s.log.debug("restore: fetch failed", { peer: peer.address, error: (e as Error).message });
        }
      }
      if (round % 30 === 0) s.log.warn("restore: no peer has the staged snapshot yet; retrying", { id: op.snapshotId });
      await Bun.sleep(FETCH_RETRY_MS);
    }
  }

  /** Drop staged files whose restore a local raft snapshot covers and every server has applied. */
  async cleanup(snapshotIndex: number, allApplied: (index: number) => Promise<boolean>): Promise<void> {
    for (const [id, index] of this.appliedAt) {
      if (snapshotIndex >= index && (await allApplied(index))) {
        await this.staged.remove(id);
        this.appliedAt.delete(id);
      }
    }
    // Day-old files of restores not applied here: ones never committed, or a lagging server's whose
    // entry, when it applies, fetches the file from a peer that applied it (those keep theirs meanwhile).
    const keep = new Set(this.appliedAt.keys());
    if (this.prepared) keep.add(this.prepared.id);
    await this.staged.sweep(keep, { temps: false });
  }
}

export const RESTORE_ENTRY_TYPE = EntryType.Normal;

/** `records`, ending with an error at the next batch once `stop()` says nobody waits for them. */
function abandonable(records: AsyncIterable<unknown>, stop: () => boolean): AsyncIterable<unknown> {
  const batched = (records as Partial<BatchedRecords>)[RECORD_BATCHES];
  const abandoned = () => new EdgeError("ABORTED", "a newer restore superseded this one");
  return {
    async *[Symbol.asyncIterator]() {
      for await (const r of records) {
        if (stop()) throw abandoned();
        yield r;
      }
    },
    ...(batched
      ? {
          async *[RECORD_BATCHES]() {
            for await (const b of batched.call(records)) {
              if (stop()) throw abandoned();
              yield b;
            }
          },
        }
      : {}),
  } as AsyncIterable<unknown>;
}

/** A transport failure talking to the leader (its refusals pass through unchanged) as a 503 saying what it means. */
function connectionLost(e: unknown, what: string): unknown {
  const code = (e as { code?: unknown })?.code;
  if (code !== "ABORTED" && code !== "SESSION_CLOSED") return e;
  return new EdgeError("UNAVAILABLE", `lost the connection to the leader ${what} (${(e as Error).message})`);
}
