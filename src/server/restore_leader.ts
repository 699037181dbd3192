// The restore's leader part, and a peer's Snapshot.Unstage. The leader spools the upload as it arrives,
// verifying it and building its state in the same pass, while every other server receives the spool as
// it grows and does the same (stage_fanout.ts, stage_receiver.ts): one pass over the file, on every
// server at once. Once the leader has verified the whole file and made it durable, each peer makes its
// copy durable and answers; with a quorum of voters holding matching copies the leader proposes the
// restore entry, and restore_apply.ts swaps every server's state, built already, when the entry applies.
import { rm } from "node:fs/promises";
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { type Entry, EntryType } from "../raft/storage.ts";
import { FORMAT_VERSION, SnapshotFormatError } from "../snapshot/format.ts";
import { readSnapshot, type VerifyResult } from "../snapshot/reader.ts";
import { RestoreError } from "../state/restore.ts";
import { StateStore } from "../state/state_store.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import type { Chunks } from "./chunk_ownership.ts";
import { GrowingFile } from "./growing_file.ts";
import type { RestoreOp } from "./fsm.ts";
import type { Metrics } from "./metrics.ts";
import { pausable, pauseAfterFirst, type PhasePoint } from "./restore_phase.ts";
import type { PreparedStates } from "./restore_prepared.ts";
import type { RestoreArgs } from "./restore_relay.ts";
import { StageFanout } from "./stage_fanout.ts";
import type { StageReply } from "./stage_receiver.ts";
import { recorded, replyIndex, type OpHandle, type SnapshotRecorder } from "./snapshot_history.ts";
import { checkStagedId, SpoolThrough, type StagedSnapshots } from "./staged_snapshots.ts";

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
  readonly history: SnapshotRecorder;
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
  /**
   * Whether every server takes a staging from the upload's first byte. A server of an older release wants
   * the size and digest up front: the leader then stages on the peers once it has verified the file.
   */
  onePassStaging(): boolean;
  openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream>;
  call(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<unknown>;
}

export class RestoreLeader {
  private running = false;

  constructor(private readonly h: LeaderHost) {}

  /** Run a restore on this server, which leads its region. */
  lead(upload: Chunks, args: RestoreArgs): Promise<unknown> {
    const op = this.h.history.start("restore", "leader", args.dryRun);
    return recorded(op, () => this.run(upload, args, op), replyIndex);
  }

  private async run(upload: Chunks, args: RestoreArgs, op: OpHandle): Promise<unknown> {
    const h = this.h;
    await h.authorize("Operator.SnapshotRestore", args.q.token);
    if (this.running) throw new EdgeError("CONFLICT", "another snapshot restore is in progress; one restore at a time");
    if (!args.dryRun && h.membershipChangePending()) throw membershipConflict();
    this.running = true;
    const t0 = performance.now();
    const tmp = h.staged.tempPath("upload");
    let outcome = "error";
    let bytes = 0;
    let fanout: StageFanout | undefined;
    try {
      // 1-2. Spool the upload to disk as it arrives and, in the same pass, verify the file and build the
      //    state it holds, before anything changes: the reader checks frame CRCs, counts and the SHA-256
      //    as it goes (and that nothing follows the trailer, so it consumes the whole upload), and the
      //    store is kept only if the pass ends cleanly; a file whose records the state machine would
      //    refuse is refused here too. Each chunk reaches the reader only once it is in the spool. One
      //    pass rather than receive-then-verify or verify-then-build: each extra pass over the file
      //    costs about as long as the upload itself.
      // 3. From the first byte, every other server receives the spool as it grows (stage_fanout.ts) and
      //    does the same there (stage_receiver.ts): the peers verify and build while the upload arrives
      //    here, and hold the file durably once this leader has verified it.
      let v: VerifyResult;
      let trialStore: StateStore;
      const growing = new GrowingFile(tmp);
      const sp = await SpoolThrough.create(tmp, (size) => {
        growing.grew(size);
        op.bytes(size);
      });
      if (!args.dryRun && h.onePassStaging()) fanout = new StageFanout(h, crypto.randomUUID(), growing);
      const spooled = sp.through(pausable ? pauseAfterFirst(upload.chunks, h.phase) : upload.chunks, (size) => {
        bytes = size;
        growing.end(size);
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
        fanout?.abort(new EdgeError("ABORTED", `the leader refused the upload: ${(e as Error).message}`));
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
      op.phase("verified");
      if (args.dryRun) {
        outcome = "dry-run";
        return dryRunReply(v);
      }
      if (h.membershipChangePending()) throw membershipConflict();
      if (pausable) await h.phase("verified");
      const result = await this.stageAndPropose(fanout, tmp, trialStore, v.size, v.sha256, op);
      fanout = undefined;
      outcome = "ok";
      h.log.info("restore: done", { index: result.Index, bytes: v.size, ms: Math.round(performance.now() - t0) });
      return result;
    } catch (e) {
      // Whatever failed (a refusal, the client gone, a throw, the proposal): the peers still staging drop
      // what they received. Those that answered keep their files until Snapshot.Unstage or the sweep.
      fanout?.abort(new EdgeError("ABORTED", `the leader gave up on the restore: ${(e as Error).message}`));
      throw e;
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

  /** 3. Keep the verified spool, let the peers keep theirs, wait for a quorum of voters; 4. commit the restore. */
  private async stageAndPropose(
    early: StageFanout | undefined,
    tmp: string,
    store: StateStore,
    size: number,
    sha256: string,
    record: OpHandle,
  ): Promise<{ Index: number }> {
    const h = this.h;
    const id = early?.id ?? crypto.randomUUID();
    await h.staged.adopt(id, tmp, sha256);
    h.prepared.adopt(id, sha256, store);
    // A cluster with a server of an older release stages the verified file now, as that release expects.
    const fanout = early ?? lateFanout(h, id, h.staged.path(id), { Size: size, Sha256: sha256 });
    fanout.commit(size);
    const staged = await fanout.quorum({ Size: size, Sha256: sha256 });
    h.log.info("restore: staged", { id, servers: staged.ok, voters: staged.voters });
    if (staged.ok < staged.quorum) {
      // Never proposed, so never to be applied anywhere: nothing of it need be kept, here or on the
      // peers that did stage it (each would otherwise hold the file, and the state built from it).
      fanout.abort(new EdgeError("ABORTED", "too few servers staged the restore"));
      h.prepared.drop(id);
      await h.staged.remove(id);
      void this.unstageOnPeers(id);
      throw new EdgeError(
        "UNAVAILABLE",
        `snapshot staged on ${staged.ok} of ${staged.voters} voters, a quorum needs ${staged.quorum}; nothing was changed`,
      );
    }
    record.phase("staged", staged.ok);
    if (pausable) await h.phase("staged", { id });
    // Every server swaps when it applies the entry. The proposal resolves once this server applied it
    // (and rebuilt its leader state). Peers still staging go on meanwhile, within their deadline.
    const op: RestoreOp = { op: "restore", snapshotId: id, sha256, size, now: Date.now() };
    const proposal = h.propose(op, PROPOSE_TIMEOUT_MS);
    // In this server's raft log now, or held behind the leader's open round and proposed in arrival order
    // once it commits (round_gate.ts): writes sent after it still come after it in the log.
    h.log.info("restore: proposed", { id });
    return (await proposal) as { Index: number };
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

function membershipConflict(): EdgeError {
  return new EdgeError("CONFLICT", "a membership change is in progress; retry the restore once it completes");
}

/** A staging of the whole verified file at `path`, its size and digest sent up front. */
function lateFanout(h: LeaderHost, id: string, path: string, file: StageReply): StageFanout {
  const whole = new GrowingFile(path);
  whole.end(file.Size);
  return new StageFanout(h, id, whole, { expect: file });
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
