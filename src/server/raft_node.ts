// This server's raft node, assembled from its parts: the start of the core and driver
// (raft_start.ts), raft snapshots (raft_snapshots.ts), the peer transport, and the gate that admits
// peers' raft streams (raft_admission.ts). The server hands it the stores and the few things raft
// calls back into.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/logger.ts";
import type { RefusalLog } from "../lib/refusal_log.ts";
import type { RawNode } from "../raft/raw_node.ts";
import type { SnapshotStore } from "../storage/snapshot_store.ts";
import type { StableStore } from "../storage/stable_store.ts";
import type { Wal } from "../storage/wal.ts";
import type { ConnPool } from "../transport/pool.ts";
import type { RpcServer } from "../transport/rpc_server.ts";
import { ApplyStop, reportOf } from "./apply_stop.ts";
import type { Fsm } from "./fsm.ts";
import type { Members } from "./members.ts";
import type { Metrics } from "./metrics.ts";
import { PeerTransport } from "./peer_transport.ts";
import { serverGate } from "./raft_admission.ts";
import type { RaftDriver } from "./raft_driver.ts";
import { RaftSnapshots } from "./raft_snapshots.ts";
import { type BootstrapServer, RaftStart } from "./raft_start.ts";

/** What the raft node needs from the server. */
export interface RaftNodeHost {
  readonly cfg: Config;
  readonly log: Logger;
  readonly stats: Metrics;
  readonly pool: ConnPool;
  readonly members: Members;
  readonly fsm: Fsm;
  readonly stable: StableStore;
  readonly wal: Wal;
  readonly snapshots: SnapshotStore;
  /** Raft drops, logged at a bounded rate. */
  readonly drops: RefusalLog;
  nodeId(): string;
  advertise(): string;
  stopping(): boolean;
  logAt(level: string, msg: string): void;
  fatal(e: unknown): void;
  onLeaderChange(lead: string, isLeader: boolean, term: number): void;
  /** The newest restore entry's index (the restore's bookkeeping), for log compaction. */
  restoreCompactIndex(): number;
}

export class RaftNode {
  private readonly starter: RaftStart;
  readonly raftSnapshots: RaftSnapshots;
  readonly peers: PeerTransport;
  /** Set once the applier meets an entry this binary does not understand (apply_stop.ts). */
  readonly applyStop: ApplyStop;

  constructor(private readonly h: RaftNodeHost) {
    const { members, fsm } = h;
    const stop = new ApplyStop({
      log: h.log,
      stats: h.stats,
      forbidCampaign: () => {
        this.node?.setMayCampaign(false);
        this.driver?.kick();
      },
      behind: () => Math.max(0, (this.node?.status().commit ?? 0) - (this.driver?.applied ?? 0)),
    });
    this.applyStop = stop;
    this.raftSnapshots = new RaftSnapshots({
      ...h,
      applied: () => this.driver?.applied,
      applyStopped: () => stop.stopped?.Message,
      config: () => members.config,
      setConfig: (c) => members.set(c),
    });
    const snaps = this.raftSnapshots;
    this.peers = new PeerTransport(
      () => h.nodeId(),
      h.pool,
      h.log,
      h.stats,
      (id) => this.node?.reportUnreachable(id),
      () => h.advertise(),
      undefined,
      () => h.stable.get().clusterId,
    );
    const peers = this.peers;
    this.starter = new RaftStart({
      ...h,
      hooks: {
        send: (m) => peers.send(m),
        sendSnapshot: (m) => peers.sendSnapshot(m, { open: () => snaps.openFor(m) }),
        // The driver stops its applier on the refusal; the stop's reporting starts here.
        apply: (e) =>
          fsm.apply(e).catch((err: unknown) => {
            if (reportOf(err)) stop.stop(e.index, err);
            throw err;
          }),
        applyConfChange: (e) => members.applyConfChange(e),
        installSnapshot: (meta) => snaps.install(meta),
        afterApply: (applied) => snaps.maybe(applied),
        onLeaderChange: (lead, isLeader, term) => h.onLeaderChange(lead, isLeader, term),
        fatal: (e) => h.fatal(e),
      },
      loadedSnapshot: (index) => snaps.loaded(index),
      started: (c) => members.set(c),
    });
  }

  get node(): RawNode | undefined {
    return this.starter.node;
  }

  get driver(): RaftDriver | undefined {
    return this.starter.driver;
  }

  /** Starts raft from the stores (once; see RaftStart.start). */
  start(): Promise<void> {
    return this.starter.start();
  }

  /** Founds a cluster of `servers` on an empty log (see RaftStart.bootstrap). */
  bootstrap(servers: BootstrapServer[]): Promise<void> {
    return this.starter.bootstrap(servers);
  }

  /** Raft on the RPC port: peers' message streams (admitted by the gate) and their snapshot streams. */
  register(rpc: RpcServer): void {
    const gate = serverGate({
      ...this.h,
      raftRunning: () => this.node !== undefined,
      coreConfig: () => this.node?.status().config ?? { servers: [] },
    });
    this.peers.register(rpc, (m) => this.starter.stepFromPeer(m), { receive: (m, c) => this.raftSnapshots.receive(m, c) }, gate);
  }

  stop(): void {
    this.applyStop.close();
    this.driver?.stop();
    this.peers.close();
  }
}
