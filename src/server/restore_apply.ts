// The restore's apply, on every server when the committed restore entry applies: swap in the state
// built ahead (restore_prepared.ts: while the upload or the staging arrived), waiting for that build if
// it is still under way, or build it from the staged file — fetched from a peer if this
// server lacks it, within a bound — then snapshot it, and drop staged files once every server applied
// their restore and a raft snapshot here covers it.
import { withDeadline } from "../lib/deadline.ts";
import { formatDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { readSnapshot } from "../snapshot/reader.ts";
import { RestoreError } from "../state/restore.ts";
import { StateStore } from "../state/state_store.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { owned, sendAll } from "./chunk_ownership.ts";
import type { RestoreOp } from "./fsm.ts";
import { pausable, type PhasePoint } from "./restore_phase.ts";
import type { PreparedStates } from "./restore_prepared.ts";
import type { StagedSnapshots } from "./staged_snapshots.ts";
import type { SnapshotRecorder } from "./snapshot_history.ts";

/** Establishing leadership again after the swap must finish within this. */
export const REASSERT_BOUND_MS = 60_000;
/**
 * How long a committed restore may go on trying to get a usable staged file (fetched from peers, built)
 * before this server stops: it cannot skip the entry, and serving the old state would diverge from
 * every server that applied it. Restarted, it gets the file, or the snapshot that covers the restore.
 */
export const FETCH_DEADLINE_MS = 15 * 60_000;
/** Pause between rounds over the peers when none could give the file. */
export const FETCH_RETRY_MS = 1_000;
/** A fetch from one peer is bounded like a staging: a floor, plus the file at a pessimistic 10 MB/s. */
const FETCH_MIN_TIMEOUT_MS = 30_000;
const FETCH_BYTES_PER_MS = 10_000;
const FETCH_OPEN_TIMEOUT_MS = 5_000;
const APPLIED_ASK_TIMEOUT_MS = 2_000;

/** What the apply needs of the server. */
export interface ApplyHost {
  readonly log: Logger;
  readonly staged: StagedSnapshots;
  readonly prepared: PreparedStates;
  readonly phase: PhasePoint;
  readonly history: Pick<SnapshotRecorder, "atPhase">;
  selfId(): string;
  servers(): readonly { id: string; address: string }[];
  isLeader(): boolean;
  /** The state machine's applied index. */
  applied(): number;
  /** The index of this server's newest raft snapshot. */
  lastSnapshotIndex(): number;
  replaceStore(store: StateStore): void;
  /** Re-run establish-leadership from the swapped state. */
  reassertLeadership(): Promise<void>;
  /**
   * A raft snapshot now; `from`, a file holding exactly the state at `from.index` whose SHA-256 this server
   * verified (the staged file, hashed as it was written or read for the swap), may serve as its body.
   */
  takeSnapshot(from?: { index: number; chunks: () => AsyncIterable<Uint8Array> }): Promise<unknown>;
  openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream>;
  call(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<unknown>;
  /** Stop the server: a committed entry that cannot be applied. */
  fatal(e: unknown): void;
}

export class RestoreApply {
  /**
   * Restores applied here, by staged id, so their files can be dropped once a snapshot covers them.
   * Seeded at start from the staged directory's notes (StagedSnapshots.markApplied).
   */
  private readonly appliedAt: Map<string, number>;
  private compactTo = 0;

  constructor(
    private readonly h: ApplyHost,
    applied: ReadonlyMap<string, number>,
    private readonly bounds: { fetchDeadlineMs: number; fetchRetryMs: number } = {
      fetchDeadlineMs: FETCH_DEADLINE_MS,
      fetchRetryMs: FETCH_RETRY_MS,
    },
  ) {
    this.appliedAt = new Map(applied);
  }

  /** The newest restore entry's index: a raft snapshot that covers it compacts the log through it. */
  get compactIndex(): number {
    return this.compactTo;
  }

  appliedHere(id: string): boolean {
    return this.appliedAt.has(id);
  }

  /** The FSM's handler of a committed restore entry. */
  async apply(index: number, op: RestoreOp): Promise<{ Index: number }> {
    const h = this.h;
    h.history.atPhase("committed");
    if (pausable) await h.phase("apply", { index, id: op.snapshotId });
    const t0 = performance.now();
    const ready = await h.prepared.take(op.snapshotId, op.sha256);
    h.replaceStore(ready ? ready.restamped(index) : await this.build(index, op));
    this.appliedAt.set(op.snapshotId, index);
    h.history.atPhase("swapped");
    // prepared: the state was built ahead (while staging) and only swapped in here.
    h.log.info("restore: swapped", { index, prepared: ready !== undefined, ms: Math.round(performance.now() - t0) });
    if (pausable) await h.phase("swapped", { index, id: op.snapshotId });
    // Only housekeeping rides on the note, so failing to write it must not fail the apply. No cleanup can
    // drop the file meanwhile: that needs a raft snapshot at `index`, which waits for this apply to return.
    await h.staged
      .markApplied(op.snapshotId, index)
      .catch((e: unknown) =>
        h.log.warn(
          "restore: could not note the applied restore; its staged file stays until the day-old sweep if this server restarts first",
          { id: op.snapshotId, error: (e as Error).message },
        ),
      );
    this.snapshotAfter(index, op.snapshotId);
    if (h.isLeader()) {
      const what = `snapshot restored at index ${index}, but rebuilding the leader's state did not finish within ${formatDuration(REASSERT_BOUND_MS)}`;
      await withDeadline(h.reassertLeadership(), REASSERT_BOUND_MS, () => new EdgeError("INTERNAL", what));
      h.log.info("restore: leader state rebuilt", { index });
    }
    return { Index: index };
  }

  /**
   * The new store from the staged file (the old one stays live until this succeeds), fetching the file
   * when it is missing or unusable, until the fetch deadline: then the server stops.
   */
  private async build(index: number, op: RestoreOp): Promise<StateStore> {
    const h = this.h;
    const until = performance.now() + this.bounds.fetchDeadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!h.staged.has(op.snapshotId)) await this.fetch(op, until);
        // A file this process hashed as it wrote it (staged here, or fetched just now), to the committed
        // digest: read again, its frames' CRC32s find damage since. One staged before a restart is hashed.
        const known = h.staged.hashedAsWritten(op.snapshotId) === op.sha256;
        const reader = readSnapshot(h.staged.open(op.snapshotId), {
          release: owned("file"),
          ...(known ? { verifiedSha256: op.sha256 } : {}),
        });
        await reader.header;
        const store = await StateStore.restore(reader.records, index);
        const got = reader.result;
        if (!got || got.size !== op.size || got.sha256 !== op.sha256) {
          throw new EdgeError("CORRUPT", `staged snapshot ${op.snapshotId} does not match the committed digest`);
        }
        return store;
      } catch (e) {
        // The same file fails the same way everywhere: a deterministic refusal, state unchanged.
        if (e instanceof RestoreError) {
          h.log.error("restore: the committed snapshot's state is invalid; keeping the current state", { index, error: e.message });
          throw new EdgeError("BAD_SNAPSHOT", e.message);
        }
        const left = until - performance.now();
        if (left <= 0) {
          const err = new EdgeError(
            "UNAVAILABLE",
            `restore at index ${index}: no usable copy of staged snapshot ${op.snapshotId} within ${formatDuration(this.bounds.fetchDeadlineMs)} (${attempt} attempts; last: ${(e as Error).message}); stopping rather than serving a state the cluster has left`,
          );
          h.fatal(err);
          throw err;
        }
        // A committed entry cannot be skipped: drop the bad copy (if any) and fetch a good one from a peer.
        h.log.warn("restore: no usable staged snapshot yet; retrying", {
          id: op.snapshotId,
          attempt,
          left: formatDuration(Math.round(left)),
          error: (e as Error).message,
        });
        await h.staged.remove(op.snapshotId);
        await Bun.sleep(Math.min(this.bounds.fetchRetryMs, left));
      }
    }
  }

  /** One round over the peers for the staged file of `op`; throws if none gave it. */
  private async fetch(op: RestoreOp, until: number): Promise<void> {
    const h = this.h;
    const errors: string[] = [];
    for (const peer of h.servers()) {
      if (peer.id === h.selfId()) continue;
      const left = until - performance.now();
      if (left <= 0) break;
      let st: RpcStream | undefined;
      try {
        const bound = Math.min(left, FETCH_MIN_TIMEOUT_MS + op.size / FETCH_BYTES_PER_MS);
        await withDeadline(
          (async () => {
            st = await h.openStream(peer.address, "Snapshot.FetchStaged", { id: op.snapshotId }, { timeoutMs: FETCH_OPEN_TIMEOUT_MS });
            await h.staged.receive(op.snapshotId, st, { sha256: op.sha256, size: op.size }, { release: owned("rpc") });
          })(),
          bound,
          `fetch from ${peer.address} timed out after ${formatDuration(Math.round(bound))}`,
        );
        h.log.info("restore: fetched staged snapshot", { id: op.snapshotId, from: peer.address });
        return;
      } catch (e) {
        st?.abort("ABORTED", "fetch given up");
        errors.push(`${peer.address}: ${(e as Error).message}`);
      }
    }
    throw new EdgeError("UNAVAILABLE", `no peer gave staged snapshot ${op.snapshotId} (${errors.join("; ") || "no peers"})`);
  }

  /** RPC: a peer lacking a staged file fetches it from us. */
  async serveStaged(args: { id: string }, stream: RpcStream): Promise<void> {
    if (!this.h.staged.has(args.id)) throw new EdgeError("NOT_FOUND", `staged snapshot ${args.id} is not on this server`);
    await sendAll(stream, { chunks: this.h.staged.open(args.id), owned: owned("file") });
    await stream.end();
  }

  /** After a restore swapped the state: snapshot it so a restart or a lagging follower never needs the staged file. */
  private snapshotAfter(index: number, snapshotId: string): void {
    this.compactTo = Math.max(this.compactTo, index);
    setTimeout(() => {
      // Nothing applied since the swap: the state is exactly the staged file's records, so the file
      // becomes the raft snapshot with a new header rather than being encoded again.
      const staged = this.h.staged.has(snapshotId) ? { index, chunks: () => this.h.staged.open(snapshotId) } : undefined;
      this.h
        .takeSnapshot(staged)
        .then(() => this.cleanup())
        .catch((e: unknown) =>
          this.h.log.warn("snapshot after restore failed; will retry at the threshold", { index, error: (e as Error).message }),
        );
    }, 0);
  }

  /** Drop staged files whose restore a local raft snapshot covers and every server has applied. */
  async cleanup(): Promise<void> {
    const snapshotIndex = this.h.lastSnapshotIndex();
    for (const [id, index] of this.appliedAt) {
      if (snapshotIndex >= index && (await this.everyServerApplied(index))) {
        await this.h.staged.remove(id);
        this.appliedAt.delete(id);
      }
    }
    // Day-old files of restores not applied here: ones never committed, or a lagging server's whose
    // entry, when it applies, fetches the file from a peer that applied it (those keep theirs meanwhile).
    const keep = new Set(this.appliedAt.keys());
    const building = this.h.prepared.id;
    if (building) keep.add(building);
    await this.h.staged.sweep(keep, { temps: false });
  }

  /**
   * Whether every server of the configuration has applied `index` (asked over RPC; unreachable counts as
   * no). Not its match index: a follower acknowledges entries before it applies them (RaftDriver's
   * applier), so one holding a restore entry it has not applied yet may still need a peer's staged file.
   */
  private async everyServerApplied(index: number): Promise<boolean> {
    if (this.h.applied() < index) return false;
    for (const s of this.h.servers()) {
      if (s.id === this.h.selfId()) continue;
      try {
        const r = (await this.h.call(s.address, "Snapshot.Applied", {}, { timeoutMs: APPLIED_ASK_TIMEOUT_MS })) as { Applied?: unknown };
        if (typeof r.Applied !== "number" || r.Applied < index) return false;
      } catch {
        return false;
      }
    }
    return true;
  }
}
