// The host objects server.ts gives its modules, built from one view of the server. Each module still
// depends on its own interface (LeadershipHost, RouterHost, RestoreHost, ...); this file matches the
// server's parts to those interfaces, so that server.ts says only what is built, and when.
import type { Config } from "../config/schema.ts";
import { assert } from "../lib/assert.ts";
import { encode } from "../lib/codec.ts";
import type { Logger } from "../lib/logger.ts";
import { NotLeaderError } from "../raft/errors.ts";
import type { Command } from "../state/commands.ts";
import type { Wal } from "../storage/wal.ts";
import type { ConnPool } from "../transport/pool.ts";
import type { Endpoint } from "./endpoints.ts";
import type { Fsm, ServerOp } from "./fsm.ts";
import type { LeaderChanges } from "./leader_changes.ts";
import { autopilotConfigOf } from "./autopilot.ts";
import { inEffect } from "./autopilot_endpoints.ts";
import type { LeadershipHost } from "./leadership.ts";
import type { Members } from "./members.ts";
import type { Metrics } from "./metrics.ts";
import { leaderAddress, type Placement, type PlacementHost } from "./placement.ts";
import type { RaftNode } from "./raft_node.ts";
import type { RaftStatsHost } from "./raft_stats.ts";
import { ELECTION_TICKS, TICK_MS } from "./raft_start.ts";
import { confChangePending } from "./restore_leader.ts";
import type { Router, RouterHost } from "./router.ts";
import type { SaveHost, StateSource } from "./snapshot_save.ts";
import type { ServerVersions, VersionsHost } from "./versions.ts";
import type { RestoreHost } from "./snapshot_restore.ts";
import { scheduledFiles, SnapshotSchedule } from "./snapshot_schedule.ts";
import { askEveryServer } from "./ask_servers.ts";
import { historySchema, type ServerHistory, type SnapshotHistory, type SnapshotHistoryReply } from "./snapshot_history.ts";

/** A leadership transfer finishes or is abandoned within one election timeout (raft.ts transferLeadership). */
const TRANSFER_SETTLE_MS = ELECTION_TICKS * TICK_MS;

type Authorize = (method: string, args: Record<string, unknown>, token: string | undefined) => void | Promise<void>;

/** What the wiring reads of one server: the parts made with it, and lookups of those start() makes. */
export interface ServerView {
  readonly cfg: Config;
  readonly log: Logger;
  readonly stats: Metrics;
  readonly pool: ConnPool;
  readonly members: Members;
  readonly fsm: Fsm;
  readonly leaderChanges: LeaderChanges;
  /** The snapshot saves and restores this server took part in. */
  readonly history: SnapshotHistory;
  nodeId(): string;
  /** The cluster id in the stable store; "" before start() or before this server joined a cluster. */
  clusterId(): string;
  /** Raft here; undefined until start() has opened the stores. */
  raft(): RaftNode | undefined;
  wal(): Wal | undefined;
  stopping(): boolean;
  /** The permission check run where a call executes; undefined when ACLs are off. */
  authorize(): Authorize | undefined;
  endpoints(): Readonly<Record<string, Endpoint>>;
  fatal(e: unknown): void;
}

/** A log call by level name, the form the transport and raft modules report in. */
export function logAt(log: Logger): (level: string, msg: string) => void {
  return (level, msg) => {
    if (level === "error") log.error(msg);
    else if (level === "warn") log.warn(msg);
    else if (level === "info") log.info(msg);
    else log.debug(msg);
  };
}

/** The core's refusals (NotLeaderError, ProposalDroppedError) pass through: the router decides on a retry. */
async function propose(v: ServerView, cmd: Command | ServerOp, timeoutMs?: number): Promise<unknown> {
  const driver = v.raft()?.driver;
  // Leadership can end between the router's check and here (the handler awaits in between).
  if (!driver?.isLeader) throw new NotLeaderError(driver?.leader ?? "");
  return driver.propose(encode(cmd), timeoutMs);
}

/** A server op proposed on the leader (the refusals pass through as for propose). */
export function proposeOp(v: ServerView, op: ServerOp): Promise<unknown> {
  return propose(v, op);
}

export function versionsHost(v: ServerView): VersionsHost {
  return {
    log: v.log,
    pool: v.pool,
    members: v.members,
    nodeId: () => v.nodeId(),
    isLeader: () => v.raft()?.driver?.isLeader === true,
    stopping: () => v.stopping(),
    committed: () => v.fsm.clusterVersion,
    applyStopped: () => stoppedAt(v),
    propose: (op) => propose(v, op),
  };
}

/** This server's apply stop as Status.Versions carries it (apply_stop.ts); undefined while applying. */
export function stoppedAt(v: ServerView): { Index: number; Needs: string } | undefined {
  const r = v.raft()?.applyStop.stopped;
  return r ? { Index: r.Index, Needs: r.Feature ? `${r.Needs} built with feature ${r.Feature}` : r.Needs } : undefined;
}

export function leaderAddr(v: ServerView): string {
  return leaderAddress(v.raft()?.driver?.leader, v.members.config.servers);
}

/** This server's raft progress as it reports it (raft_stats.ts), and the peers to ask for theirs. */
export function raftStatsHost(v: ServerView): RaftStatsHost {
  return {
    members: v.members,
    nodeId: () => v.nodeId(),
    call: (addr, method, args, o) => v.pool.call(addr, method, args, o),
    own: () => {
      const st = v.raft()?.node?.status();
      const driver = v.raft()?.driver;
      return {
        ID: v.nodeId(),
        State: st?.state ?? "none",
        Term: st?.term ?? 0,
        LastIndex: st?.lastIndex ?? v.wal()?.lastIndex() ?? 0,
        CommitIndex: st?.commit ?? 0,
        AppliedIndex: driver?.applied ?? 0,
        ClusterID: v.clusterId(),
        Leader: driver?.leader ?? "",
      };
    },
  };
}

/** The part of the view most host interfaces ask for; each module takes what its interface declares. */
export function shared(v: ServerView) {
  return {
    cfg: v.cfg,
    log: v.log,
    stats: v.stats,
    pool: v.pool,
    members: v.members,
    nodeId: () => v.nodeId(),
    node: () => v.raft()?.node,
    driver: () => v.raft()?.driver,
    config: () => v.members.config,
    stopping: () => v.stopping(),
    leaderAddr: () => leaderAddr(v),
    logAt: logAt(v.log),
    fatal: (e: unknown) => v.fatal(e),
  };
}

/** The current state as a snapshot file is written from it (saves and the schedule). */
function stateSource(v: ServerView): StateSource {
  return {
    state: { view: () => v.fsm.state.view() },
    fsm: v.fsm,
    termOf: (index) => {
      const wal = v.wal();
      assert(wal, "the log is open");
      return wal.term(index);
    },
    currentConfig: () => v.members.config,
  };
}

export function leadershipHost(v: ServerView): Omit<LeadershipHost, "removePeer"> {
  return {
    ...shared(v),
    state: () => v.fsm.state,
    propose: (cmd) => propose(v, cmd),
    leaderChanged: () => v.leaderChanges.changed(),
    tickMs: TICK_MS * v.cfg.server.raft_multiplier,
    autopilotSettings: () => inEffect({ committed: v.fsm.autopilot, fromFile: () => autopilotConfigOf(v.cfg) }),
    startSchedule: () => {
      if (!v.cfg.snapshot_schedule.enabled) return undefined;
      const schedule = new SnapshotSchedule({ ...stateSource(v), log: v.log, stats: v.stats, history: v.history }, v.cfg.snapshot_schedule);
      schedule.start();
      return schedule;
    },
  };
}

export function placementHost(v: ServerView): PlacementHost {
  return {
    region: () => v.cfg.region,
    federation: () => v.cfg.federation,
    isLeader: () => v.raft()?.driver?.isLeader === true,
    leaderAddress: () => leaderAddr(v),
    waitForLeader: (ms) => v.leaderChanges.leaderKnown(() => Boolean(v.raft()?.driver?.leader), ms),
  };
}

export function routerHost(v: ServerView, placement: Placement): RouterHost {
  return {
    placement,
    stats: v.stats,
    log: v.log,
    transferSettleMs: TRANSFER_SETTLE_MS,
    endpoints: () => v.endpoints(),
    raft: () => v.raft()?.driver,
    authorize: () => v.authorize(),
    state: () => v.fsm.state,
    swapped: (signal) => v.fsm.swapped(signal),
    propose: (cmd) => propose(v, cmd),
    waitForLeaderChange: (ms) => v.leaderChanges.next(ms),
    rpc: (addr, method, args, o) => v.pool.call(addr, method, args, o),
    applyStop: () => v.raft()?.applyStop,
  };
}

async function authorizeCall(v: ServerView, method: string, args: Record<string, unknown>, token: string | undefined): Promise<void> {
  const authorize = v.authorize();
  if (authorize) await authorize(method, args, token);
}

export function saveHost(v: ServerView, placement: Placement, router: Router): SaveHost {
  return {
    ...stateSource(v),
    cfg: v.cfg,
    log: v.log,
    stats: v.stats,
    placement,
    pool: v.pool,
    history: v.history,
    get driver() {
      return v.raft()?.driver;
    },
    queryMeta: (index) => router.meta(index),
    authorizeCall: (method, args, token) => authorizeCall(v, method, args, token),
  };
}

/** `leadership.reassert` re-runs establish-leadership after a restore swapped the state. */
export function restoreHost(
  v: ServerView,
  placement: Placement,
  leadership: { reassert(): void },
  versions: Pick<ServerVersions, "snapshotFormatAllowed" | "allowed">,
): RestoreHost {
  const driver = () => v.raft()?.driver;
  return {
    log: v.log,
    stats: v.stats,
    history: v.history,
    placement,
    dataDir: () => v.cfg.data_dir,
    selfId: () => v.nodeId(),
    servers: () => v.members.config.servers,
    isLeader: () => driver()?.isLeader === true,
    applied: () => driver()?.applied ?? 0,
    lastSnapshotIndex: () => v.raft()?.raftSnapshots.lastIndex ?? 0,
    authorize: (method, token) => authorizeCall(v, method, {}, token),
    membershipChangePending: () => {
      const d = driver();
      const wal = v.wal();
      return d !== undefined && wal !== undefined && confChangePending(d.applied, wal);
    },
    propose: (op, ms) => propose(v, op, ms),
    snapshotFormatAllowed: (format) => versions.snapshotFormatAllowed(format),
    onePassStaging: () => versions.allowed("one-pass-restore"),
    reassertLeadership: async () => leadership.reassert(),
    takeSnapshot: (from) => {
      const raft = v.raft();
      assert(raft, "raft is running");
      return raft.raftSnapshots.take(from);
    },
    openStream: (addr, method, args, o) => v.pool.openStream(addr, method, args, o),
    call: (addr, method, args, o) => v.pool.call(addr, method, args, o),
    fatal: (e) => v.fatal(e),
  };
}

/** Snapshot.History's answer here: this server's record, and its scheduled files when the schedule is on. */
export async function localSnapshotHistory(v: ServerView): Promise<ServerHistory> {
  const sched = v.cfg.snapshot_schedule;
  const inProgress = v.history.inProgress();
  return {
    Ops: v.history.ops(),
    ...(inProgress ? { InProgress: inProgress } : {}),
    Scheduled: sched.enabled ? await scheduledFiles(sched) : [],
  };
}

/** Every server's snapshot history, asked at once (a server that does not answer is shown with why). */
export async function clusterSnapshotHistory(v: ServerView): Promise<SnapshotHistoryReply> {
  const host = { members: v.members, nodeId: () => v.nodeId(), call: v.pool.call.bind(v.pool) };
  const answers = await askEveryServer(host, "Snapshot.History", {}, historySchema, () => localSnapshotHistory(v));
  return {
    Servers: answers.map(({ reply, error, ...who }) =>
      reply ? { ...who, ...reply } : { ...who, Ops: [], Scheduled: [], Error: error ?? "no answer" },
    ),
  };
}
