// Snapshot restore through consensus, in three parts: the relay (restore_relay.ts: any server streams
// the upload on to its region's leader), the leader (restore_leader.ts: verify and build as the file
// arrives while every peer receives, verifies and builds it too — stage_fanout.ts, stage_receiver.ts —
// then propose the restore entry once a quorum of voters holds it) and the apply (restore_apply.ts:
// every server swaps its state when it applies that entry, fetching the staged file from a peer if it
// lacks it). No server exposes a state the cluster could lose; a crash at any point leaves all servers
// on wholly old or new. This file wires the parts to the server through one narrow host.
import type { QueryOptions } from "./backend.ts";
import { assert } from "../lib/assert.ts";
import type { Logger } from "../lib/logger.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { owned } from "./chunk_ownership.ts";
import type { Fsm, RestoreOp } from "./fsm.ts";
import type { Metrics } from "./metrics.ts";
import type { Placement } from "./placement.ts";
import { FETCH_DEADLINE_MS, FETCH_RETRY_MS, RestoreApply } from "./restore_apply.ts";
import { RestoreLeader } from "./restore_leader.ts";
import { type StageArgs, StageReceiver } from "./stage_receiver.ts";
import { phasePoint } from "./restore_phase.ts";
import { PREPARED_TTL_MS, PreparedStates } from "./restore_prepared.ts";
import { idleBounded, RestoreRelay, type RestoreArgs, UPLOAD_IDLE_MS } from "./restore_relay.ts";
import type { StagedSnapshots } from "./staged_snapshots.ts";
import { NO_HISTORY, type SnapshotRecorder } from "./snapshot_history.ts";

export type { RestorePhase } from "./restore_phase.ts";
export type { RestoreOp } from "./fsm.ts";

/** How often staged files are looked at for removal (RestoreApply.cleanup). */
const CLEANUP_EVERY_MS = 30_000;

/** What the restore needs of the server. */
export interface RestoreHost {
  readonly log: Logger;
  readonly stats: Metrics;
  readonly placement: Placement;
  /** Where the restores this server takes part in are recorded (none: not recorded). */
  readonly history?: SnapshotRecorder;
  /** The data directory (the test hook's pause file is there). */
  dataDir(): string;
  selfId(): string;
  /** The configuration's servers as this server applied it. */
  servers(): readonly { id: string; address: string; voter: boolean }[];
  isLeader(): boolean;
  applied(): number;
  lastSnapshotIndex(): number;
  authorize(method: string, token: string | undefined): Promise<void>;
  membershipChangePending(): boolean;
  propose(op: RestoreOp, timeoutMs: number): Promise<unknown>;
  /** The feature gate on a file's snapshot format (versions.ts). */
  snapshotFormatAllowed(format: number): Promise<void>;
  /** Whether every server stages from the upload's first byte (the one-pass-restore feature; features.ts). */
  onePassStaging(): boolean;
  reassertLeadership(): Promise<void>;
  takeSnapshot(from?: { index: number; chunks: () => AsyncIterable<Uint8Array> }): Promise<unknown>;
  openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream>;
  call(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<unknown>;
  fatal(e: unknown): void;
}

export interface RestoreOptions {
  /** How long a state built ahead is held for its entry (PREPARED_TTL_MS). */
  preparedTtlMs?: number | undefined;
  /** How long an apply tries to get a usable staged file before the server stops (FETCH_DEADLINE_MS). */
  fetchDeadlineMs?: number | undefined;
  fetchRetryMs?: number | undefined;
}

export class RestoreCoordinator {
  private readonly prepared: PreparedStates;
  private readonly relay: RestoreRelay;
  private readonly leader: RestoreLeader;
  private readonly receiver: StageReceiver;
  readonly applier: RestoreApply;
  private cleanupTimer: ReturnType<typeof setInterval> | undefined;
  private readonly log: Logger;
  /** The state machine whose restore entries apply here, and whose store a restore replaces. */
  private fsm: Fsm | undefined;

  constructor(
    h: RestoreHost,
    readonly staged: StagedSnapshots,
    applied: ReadonlyMap<string, number> = new Map(),
    opts: RestoreOptions = {},
  ) {
    this.log = h.log;
    this.prepared = new PreparedStates(staged, h.log, opts.preparedTtlMs ?? PREPARED_TTL_MS);
    const phase = phasePoint(() => h.dataDir(), h.log);
    const history = h.history ?? NO_HISTORY;
    const parts = { staged, prepared: this.prepared, phase, history };
    this.applier = new RestoreApply(
      {
        ...parts,
        log: h.log,
        selfId: () => h.selfId(),
        servers: () => h.servers(),
        isLeader: () => h.isLeader(),
        applied: () => h.applied(),
        lastSnapshotIndex: () => h.lastSnapshotIndex(),
        replaceStore: (s) => {
          assert(this.fsm !== undefined, "the restore is registered with the state machine before raft applies");
          this.fsm.replaceStore(s);
        },
        reassertLeadership: () => h.reassertLeadership(),
        takeSnapshot: (from) => h.takeSnapshot(from),
        openStream: (...a) => h.openStream(...a),
        call: (...a) => h.call(...a),
        fatal: (e) => h.fatal(e),
      },
      applied,
      { fetchDeadlineMs: opts.fetchDeadlineMs ?? FETCH_DEADLINE_MS, fetchRetryMs: opts.fetchRetryMs ?? FETCH_RETRY_MS },
    );
    this.leader = new RestoreLeader({
      ...parts,
      log: h.log,
      stats: h.stats,
      selfId: () => h.selfId(),
      servers: () => h.servers(),
      authorize: (method, token) => h.authorize(method, token),
      membershipChangePending: () => h.membershipChangePending(),
      propose: (op, ms) => h.propose(op, ms),
      appliedHere: (id) => this.applier.appliedHere(id),
      snapshotFormatAllowed: (format) => h.snapshotFormatAllowed(format),
      onePassStaging: () => h.onePassStaging(),
      openStream: (...a) => h.openStream(...a),
      call: (...a) => h.call(...a),
    });
    this.receiver = new StageReceiver({
      ...parts,
      log: h.log,
      relaying: () => this.relay.relaying,
      appliedHere: (id) => this.applier.appliedHere(id),
    });
    this.relay = new RestoreRelay({
      history,
      placement: h.placement,
      log: h.log,
      openStream: (...a) => h.openStream(...a),
      lead: (upload, args) => this.leader.lead(upload, args),
    });
  }

  /** Committed restore entries apply here: the FSM hands each to the apply, which swaps the FSM's store. */
  register(fsm: Fsm): void {
    this.fsm = fsm;
    fsm.registerOp("restore", (index, op) => this.applier.apply(index, op));
  }

  /** Start the periodic cleanup of staged files. */
  start(): void {
    this.cleanupTimer = setInterval(() => {
      this.applier
        .cleanup()
        .catch((e: unknown) => this.log.warn("cleaning up staged snapshots failed; retrying in 30s", { error: (e as Error).message }));
    }, CLEANUP_EVERY_MS);
  }

  stop(): void {
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
  }

  /** The newest restore entry's index: a raft snapshot that covers it compacts the log through it. */
  get compactIndex(): number {
    return this.applier.compactIndex;
  }

  /** The restore whose new state is being built or held here, if any (for tests and diagnostics). */
  get preparedId(): string | undefined {
    return this.prepared.id;
  }

  /** The HTTP side: an upload in a request body. */
  restore(body: ReadableStream<Uint8Array>, q: QueryOptions & { dryRun: boolean; signal: AbortSignal }): Promise<unknown> {
    const { dryRun, signal, ...rest } = q;
    return this.relay.restore({ chunks: idleBounded(body, UPLOAD_IDLE_MS, signal), owned: owned("http") }, { dryRun, q: rest });
  }

  /** RPC Snapshot.Restore: an upload relayed by a peer. */
  serve(args: RestoreArgs, stream: RpcStream): Promise<void> {
    return this.relay.serve(args, stream);
  }

  /** RPC Snapshot.Stage: the leader stages a file here. */
  receiveStage(args: StageArgs, stream: RpcStream): Promise<void> {
    return this.receiver.receive(args, stream);
  }

  /** RPC Snapshot.Unstage: the leader gave up on a restore before proposing it. */
  unstage(args: { id: string }): Promise<{ Dropped: boolean }> {
    return this.leader.unstage(args);
  }

  /** RPC Snapshot.FetchStaged: a peer lacking a staged file fetches it from here. */
  serveStaged(args: { id: string }, stream: RpcStream): Promise<void> {
    return this.applier.serveStaged(args, stream);
  }
}
