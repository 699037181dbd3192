// The restore's leader part, and the staging peers' end of it. The leader spools the upload as it
// arrives, verifying it and building its state in the same pass, stages the file on a quorum of
// voters (each checks size and SHA-256, fsyncs, and builds the state after answering), then proposes
// the restore entry; restore_apply.ts swaps every server's state when the entry applies.
import { rm } from "node:fs/promises";
import { assert } from "../lib/assert.ts";
import { withDeadline } from "../lib/deadline.ts";
import { formatDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { type Entry, EntryType } from "../raft/storage.ts";
import { FORMAT_VERSION, SnapshotFormatError } from "../snapshot/format.ts";
import { readSnapshot, readSnapshotHeader, type VerifyResult } from "../snapshot/reader.ts";
import { RestoreError } from "../state/restore.ts";
import { StateStore } from "../state/state_store.ts";
import { TABLES } from "../state/tables.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { type Chunks, owned, sendAll } from "./chunk_ownership.ts";
import type { RestoreOp } from "./fsm.ts";
import type { Metrics } from "./metrics.ts";
import { pausable, pauseAfterFirst, type PhasePoint } from "./restore_phase.ts";
import type { PreparedStates } from "./restore_prepared.ts";
import type { RestoreArgs } from "./restore_relay.ts";
import { checkStagedId, SpoolThrough, type StagedSnapshots } from "./staged_snapshots.ts";

const STAGE_MIN_TIMEOUT_MS = 30_000;
/** Staging deadline grows with size at a pessimistic 10 MB/s. */
const STAGE_BYTES_PER_MS = 10_000;
const STAGE_OPEN_TIMEOUT_MS = 5_000;
const UNSTAGE_TIMEOUT_MS = 5_000;
/** No fixed bound on the restore entry's commit: it commits in raft time, and the swap is prepared already. */
const PROPOSE_TIMEOUT_MS = 3600_000;

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

/** What the leader's part needs of the server. */
export interface LeaderHost {
  readonly log: Logger;
  readonly stats: Metrics;
  readonly staged: StagedSnapshots;
  readonly prepared: PreparedStates;
  readonly phase: PhasePoint;
  selfId(): string;
  servers(): readonly { id: string; address: string; voter: boolean }[];
  /** The permission check for `method` (a no-op with ACLs off). */
  authorize(method: string, token: string | undefined): Promise<void>;
  /** True while a configuration change is proposed but not yet applied. */
  membershipChangePending(): boolean;
  /** Propose `op`; resolves once this server applied it (restore_apply.ts's answer). */
  propose(op: RestoreOp, timeoutMs: number): Promise<unknown>;
  /** Whether the restore with this id was applied here (its file is then kept for peers to fetch). */
  appliedHere(id: string): boolean;
  /** Refuses (409) a snapshot format the committed cluster version does not allow yet: an older server could not read it. */
  snapshotFormatAllowed(format: number): Promise<void>;
  openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream>;
  call(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<unknown>;
}

export class RestoreLeader {
  private running = false;

  constructor(private readonly h: LeaderHost) {}

  /** Run a restore on this server, which leads its region. */
  async lead(upload: Chunks, args: RestoreArgs): Promise<unknown> {
    const h = this.h;
    await h.authorize("Operator.SnapshotRestore", args.q.token);
    if (this.running) throw new EdgeError("CONFLICT", "another snapshot restore is in progress; one restore at a time");
    this.running = true;
    const t0 = performance.now();
    const tmp = h.staged.tempPath("upload");
    let outcome = "error";
    let bytes = 0;
    try {
      // 1-2. Spool the upload to disk as it arrives and, in the same pass, verify the file and build the
      //    state it holds, before anything changes: the reader checks frame CRCs, counts and the SHA-256
      //    as it goes (and that nothing follows the trailer, so it consumes the whole upload), and the
      //    store is kept only if the pass ends cleanly; a file whose records the state machine would
      //    refuse is refused here too. Each chunk reaches the reader only once it is in the spool. One
      //    pass rather than receive-then-verify or verify-then-build: each extra pass over the file
      //    costs about as long as the upload itself.
      let v: VerifyResult;
      let trialStore: StateStore;
      const sp = await SpoolThrough.create(tmp);
      const spooled = sp.through(pausable ? pauseAfterFirst(upload.chunks, h.phase) : upload.chunks, (size) => {
        bytes = size;
        h.log.info("restore: received", { bytes: size });
      });
      try {
        const trial = readSnapshot(spooled, { release: upload.owned });
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
        await spooled.return(undefined).catch(() => undefined);
        await sp.abort();
        if (e instanceof RestoreError || e instanceof SnapshotFormatError) {
          outcome = "invalid";
          throw new EdgeError("BAD_SNAPSHOT", `invalid snapshot: ${e.message}`);
        }
        throw e;
      }
      if (v.header.formatVersion > FORMAT_VERSION) {
        outcome = "invalid";
        throw new EdgeError(
          "BAD_SNAPSHOT",
          `snapshot format version ${v.header.formatVersion} is newer than this server's ${FORMAT_VERSION}`,
        );
      }
      await h.snapshotFormatAllowed(v.header.formatVersion).catch((e: unknown) => {
        outcome = "refused";
        throw e;
      });
      h.log.info("restore: verified", {
        sha256: v.sha256,
        index: v.header.index,
        term: v.header.term,
        region: v.header.region,
        producer: v.header.producer,
        records: v.records,
      });
      if (args.dryRun) {
        outcome = "dry-run";
        return dryRunReply(v);
      }
      if (h.membershipChangePending())
        throw new EdgeError("CONFLICT", "a membership change is in progress; retry the restore once it completes");
      if (pausable) await h.phase("verified");
      const result = await this.stageAndPropose(tmp, trialStore, v.size, v.sha256);
      outcome = "ok";
      h.log.info("restore: done", { index: result.Index, bytes: v.size, ms: Math.round(performance.now() - t0) });
      return result;
    } finally {
      this.running = false;
      await rm(tmp, { force: true });
      h.stats.inc("edgenode_snapshot_restore_total", { outcome }, 1, "snapshot restores by outcome");
      h.stats.inc("edgenode_snapshot_restore_bytes_total", {}, bytes, "bytes of snapshot restores received");
      h.stats.observe(
        "edgenode_snapshot_restore_ms",
        performance.now() - t0,
        {},
        "snapshot restore duration (ms)",
        [10, 100, 1000, 10_000, 60_000, 600_000],
      );
    }
  }

  /** 3. Stage the verified spool on a quorum of voters; 4. commit the restore. */
  private async stageAndPropose(tmp: string, store: StateStore, size: number, sha256: string): Promise<{ Index: number }> {
    const h = this.h;
    const id = crypto.randomUUID();
    await h.staged.adopt(id, tmp);
    h.prepared.adopt(id, sha256, store);
    const staged = await this.stageOnPeers(id, sha256, size);
    h.log.info("restore: staged", { id, servers: staged.ok, voters: staged.voters });
    if (staged.ok < staged.quorum) {
      // Never proposed, so never to be applied anywhere: nothing of it need be kept, here or on the
      // peers that did stage it (each would otherwise hold the file, and the state built from it).
      h.prepared.drop(id);
      await h.staged.remove(id);
      void this.unstageOnPeers(id);
      throw new EdgeError(
        "UNAVAILABLE",
        `snapshot staged on ${staged.ok} of ${staged.voters} voters, a quorum needs ${staged.quorum}; nothing was changed`,
      );
    }
    if (pausable) await h.phase("staged", { id });
    // Every server swaps when it applies the entry. The proposal resolves once this server applied it
    // (and rebuilt its leader state).
    const op: RestoreOp = { op: "restore", snapshotId: id, sha256, size, now: Date.now() };
    const proposal = h.propose(op, PROPOSE_TIMEOUT_MS);
    // In this server's raft log now (proposing is synchronous), not yet committed.
    h.log.info("restore: proposed", { id });
    return (await proposal) as { Index: number };
  }

  private async stageOnPeers(id: string, sha256: string, size: number): Promise<{ ok: number; voters: number; quorum: number }> {
    const h = this.h;
    const servers = h.servers();
    const voters = servers.filter((x) => x.voter);
    const quorum = Math.floor(voters.length / 2) + 1;
    const timeoutMs = STAGE_MIN_TIMEOUT_MS + size / STAGE_BYTES_PER_MS;
    const others = servers.filter((x) => x.id !== h.selfId());
    const results = await Promise.allSettled(
      others.map(async (peer) => {
        let st: RpcStream | undefined;
        let gaveUp = false;
        try {
          return await withDeadline(
            (async () => {
              const stream = await h.openStream(peer.address, "Snapshot.Stage", { id, sha256, size }, { timeoutMs: STAGE_OPEN_TIMEOUT_MS });
              st = stream;
              await sendAll(stream, { chunks: h.staged.open(id), owned: owned("file") }, () => {
                if (gaveUp) throw new EdgeError("TIMEOUT", "staging given up");
              });
              await stream.end();
              for await (const _ of stream) {
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
      } else h.log.warn("restore: staging on a peer failed", { peer: peer.address, error: (r.reason as Error)?.message });
    }
    return { ok, voters: voters.length, quorum };
  }

  /** Tell every peer to drop restore `id`, which this leader will never propose. Best effort. */
  private async unstageOnPeers(id: string): Promise<void> {
    const h = this.h;
    await Promise.all(
      h
        .servers()
        .filter((p) => p.id !== h.selfId())
        .map((p) =>
          h.call(p.address, "Snapshot.Unstage", { id }, { timeoutMs: UNSTAGE_TIMEOUT_MS }).catch((e: unknown) => {
            h.log.warn(
              "restore: could not tell a peer to drop a restore that was never proposed; it lets its built state go after a while, its file at a restart a day on",
              { peer: p.address, id, error: (e as Error).message },
            );
          }),
        ),
    );
  }

  // ---- on a staging peer ----

  /** RPC: a peer (the leader) stages a file here. */
  async receiveStage(args: { id: string; sha256: string; size: number }, stream: RpcStream): Promise<void> {
    const h = this.h;
    const t0 = performance.now();
    // Answer once the file is durable, matches and is one this server can read; build the state it
    // holds after, from the file. The leader proposes once staging has ended on every peer (and a quorum
    // of voters holds the file), so the commit waits on disk and network, not on every server's build:
    // building while receiving would pace the staging at the build's rate, and the leader's answer at
    // the slowest follower's whole build. Applying the entry then waits for the build on the applier,
    // apart from the raft loop (RaftDriver), so a follower still building goes on acknowledging and voting.
    await h.staged.receive(args.id, stream, { sha256: args.sha256, size: args.size }, { release: owned("rpc") });
    try {
      // A file this server cannot read (a newer format, a table it does not know) fails the staging here,
      // before anything is committed. Its records were checked by the leader, which runs the same checks.
      const header = await readSnapshotHeader(h.staged.open(args.id));
      const unknown = Object.keys(header.counts).filter((t) => !(TABLES as readonly string[]).includes(t) && header.counts[t] !== 0);
      if (unknown.length > 0) throw new EdgeError("BAD_SNAPSHOT", `snapshot holds tables this server does not know: ${unknown.join(", ")}`);
    } catch (e) {
      await h.staged.remove(args.id);
      throw e instanceof SnapshotFormatError ? new EdgeError("BAD_SNAPSHOT", `invalid snapshot: ${e.message}`) : e;
    }
    if (h.prepared.isDropped(args.id)) {
      await h.staged.remove(args.id);
      throw new EdgeError("ABORTED", `the leader gave up on restore ${args.id}`);
    }
    h.log.info("restore: staged here", { id: args.id, bytes: args.size, ms: Math.round(performance.now() - t0) });
    if (pausable) await h.phase("stage", { id: args.id });
    await stream.end();
    // A staging that outlived the leader's deadline may end after the entry applied here (it then built
    // from a fetched copy), or after the leader gave the restore up: building would hold a whole state
    // for nothing.
    if (!h.appliedHere(args.id) && !h.prepared.isDropped(args.id)) h.prepared.build(args.id, args.sha256);
  }

  /** RPC: the leader gave up on restore `id` before proposing it; drop its staged file and built state. */
  async unstage(args: { id: string }): Promise<{ Dropped: boolean }> {
    const h = this.h;
    checkStagedId(args.id);
    // A restore applied here was committed: its file stays for the usual cleanup (peers may fetch it).
    if (h.appliedHere(args.id)) throw new EdgeError("CONFLICT", `restore ${args.id} was applied here; its staged file is kept`);
    h.prepared.drop(args.id);
    const had = h.staged.has(args.id);
    await h.staged.remove(args.id);
    h.log.info("restore: dropped a restore the leader gave up on", { id: args.id, file: had });
    return { Dropped: had };
  }
}

function dryRunReply(v: VerifyResult): DryRunReply {
  return {
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
}

/** Whether a configuration change sits in the log between the applied index and the last. */
export function confChangePending(
  applied: number,
  log: { lastIndex(): number; entries(lo: number, hi: number, maxBytes: number): readonly Entry[] },
): boolean {
  const last = log.lastIndex();
  for (let i = applied + 1; i <= last; ) {
    const batch = log.entries(i, last + 1, 4 << 20);
    for (const e of batch) if (e.type === EntryType.ConfChange) return true;
    i += batch.length;
  }
  return false;
}
