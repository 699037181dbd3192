import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import type { Backend, CallResult, QueryOptions, SnapshotDownload } from "./backend.ts";
import { assert } from "../lib/assert.ts";
import type { Logger } from "../lib/logger.ts";
import { VERSION } from "../lib/version.ts";
import type { Configuration } from "../raft/storage.ts";
import type { StateStore } from "../state/state_store.ts";
import type { SnapshotStore } from "../storage/snapshot_store.ts";
import type { StableStore } from "../storage/stable_store.ts";
import type { Wal } from "../storage/wal.ts";
import { ConnPool } from "../transport/pool.ts";
import { RefusalLog } from "../lib/refusal_log.ts";
import { RpcServer } from "../transport/rpc_server.ts";
import type { Endpoint } from "./endpoints.ts";
import { Fsm } from "./fsm.ts";
import { Metrics } from "./metrics.ts";
import { operatorEndpoints } from "./operator_endpoints.ts";
import type { RaftDriver } from "./raft_driver.ts";
import { openRaftStores } from "./raft_start.ts";
import { RaftNode } from "./raft_node.ts";
import { Members } from "./members.ts";
import { ServerSecurity } from "./server_security.ts";
import { Status } from "./status.ts";
import { addNonvoterArgs, registerRpcMethods } from "./rpc_methods.ts";
import { type JoinRequest, Membership } from "./membership.ts";
import { Formation } from "./formation.ts";
import { ownReport, ServerVersions } from "./versions.ts";
import { gatedEndpoints } from "./gated_endpoints.ts";
import { type StateHash, stateHash } from "./state_hash.ts";
import { EdgeError } from "../lib/errors.ts";
import { Leadership } from "./leadership.ts";
import { autopilotConfigOf, withNames } from "./autopilot.ts";
import { autopilotEndpoints } from "./autopilot_endpoints.ts";
import { LeaderChanges } from "./leader_changes.ts";
import { varEndpoints } from "./var_endpoints.ts";
import { SnapshotSaver } from "./snapshot_save.ts";
import { RestoreCoordinator } from "./snapshot_restore.ts";
import { SnapshotHistory } from "./snapshot_history.ts";
import { Placement, regionsOf } from "./placement.ts";
import { Router } from "./router.ts";
import { raftStatsEndpoints } from "./raft_stats.ts";
import { StagedSnapshots } from "./staged_snapshots.ts";
import {
  clusterSnapshotHistory,
  leaderAddr,
  leadershipHost,
  localSnapshotHistory,
  logAt,
  placementHost,
  proposeOp,
  raftStatsHost,
  versionsHost,
  restoreHost,
  routerHost,
  type ServerView,
  saveHost,
  shared,
  stoppedAt,
} from "./server_hosts.ts";

export interface ServerOptions {
  config: Config;
  logger: Logger;
  /** How often `insecure_rpc` is warned about again; default hourly (tests shorten it). */
  insecureWarningMs?: number;
}

export class Server implements Backend {
  readonly cfg: Config;
  snapshots!: SnapshotStore;
  nodeId = "";
  rpcPort = 0;
  /**
   * Permission check run where a call executes (after forwarding). Unset when ACLs are off. Throws
   * EdgeError PERMISSION_DENIED. Installed by the ACL module.
   */
  authorize: ((method: string, args: Record<string, unknown>, token: string | undefined) => void | Promise<void>) | undefined;
  private readonly log: Logger;
  private readonly stats = new Metrics();
  private readonly fsm: Fsm;
  private readonly pool: ConnPool;
  private stable!: StableStore;
  private wal: Wal | undefined;
  private rpc: RpcServer | undefined;
  /** Raft here: the core's start, its snapshots, the peer transport; made by start() once the stores are open. */
  private raftNode: RaftNode | undefined;
  private restorer: RestoreCoordinator | undefined;
  private readonly members: Members;
  private readonly leaderChanges = new LeaderChanges();
  /** The view of this server the modules' hosts are built from (server_hosts.ts). */
  private readonly view: ServerView;
  private readonly security: ServerSecurity;
  private readonly leadership: Leadership;
  private readonly membership: Membership;
  private readonly formation: Formation;
  private readonly status: Status;
  /** Each server's release as the leader learns it, the cluster version it commits, the feature gate. */
  private readonly versions: ServerVersions;
  /** Where a request runs (here, on the leader, in another region); routing of unary calls on it. */
  private readonly placement: Placement;
  private readonly router: Router;
  private readonly saver: SnapshotSaver;
  /** Raft messages dropped by the gate: logged at a bounded rate. */
  private readonly raftDrops: RefusalLog;
  private endpoints: Record<string, Endpoint> = {};
  private stopping = false;

  constructor(opts: ServerOptions) {
    this.cfg = opts.config;
    this.log = opts.logger;
    this.fsm = new Fsm(
      () => this.cfg.region,
      () => this.stable.get().clusterId,
    );
    this.members = new Members({ log: this.log, nodeId: () => this.nodeId, setPeers: (p) => this.raftNode?.peers.setPeers(p) });
    this.security = new ServerSecurity(
      {
        cfg: this.cfg,
        log: this.log,
        stats: this.stats,
        logAt: logAt(this.log),
        nodeId: () => this.nodeId,
        regions: () => this.regions(),
        dropSessions: (drop, reason) => (this.rpc ? this.rpc.dropSessions(drop, reason) : 0),
      },
      opts.insecureWarningMs,
    );
    this.pool = new ConnPool({ log: logAt(this.log), ...this.security.dialSecurity() });
    const v: ServerView = {
      cfg: this.cfg,
      log: this.log,
      stats: this.stats,
      pool: this.pool,
      members: this.members,
      fsm: this.fsm,
      leaderChanges: this.leaderChanges,
      history: new SnapshotHistory(),
      nodeId: () => this.nodeId,
      // Read before start() opens the stable store (agent self while starting): no cluster yet.
      clusterId: () => (this.stable === undefined ? "" : this.stable.get().clusterId),
      raft: () => this.raftNode,
      wal: () => this.wal,
      stopping: () => this.stopping,
      authorize: () => this.authorize,
      endpoints: () => this.endpoints,
      fatal: (e) => this.fatal(e),
    };
    this.view = v;
    this.leadership = new Leadership({ ...leadershipHost(v), removePeer: (id) => this.membership.removePeer(id) });
    this.versions = new ServerVersions(versionsHost(v));
    this.membership = new Membership({
      ...shared(v),
      waitForLeaderChange: (ms) => this.leaderChanges.next(ms),
      versions: () => this.versions.current(),
      clusterVersion: () => this.fsm.clusterVersion.version,
      admit: (id, address) => this.versions.admit(id, address),
    });
    this.formation = new Formation({
      ...shared(v),
      advertise: () => this.cfg.advertise.rpc,
      raftRunning: () => this.raftNode?.node !== undefined,
      bootstrap: (servers) => this.raftNode?.bootstrap(servers) ?? Promise.resolve(),
    });
    this.status = new Status({
      ...shared(v),
      lastLogIndex: () => this.wal?.lastIndex() ?? 0,
      lastSnapshotIndex: () => this.raftNode?.raftSnapshots.lastIndex ?? 0,
      clusterVersion: () => this.fsm.clusterVersion.version,
      clusterId: () => v.clusterId(),
      applyStopped: () => {
        const stop = this.raftNode?.applyStop;
        const report = stop?.stopped;
        return report ? { report, behind: stop?.behind() ?? 0 } : undefined;
      },
    });
    this.raftDrops = new RefusalLog("raft", logAt(this.log));
    this.placement = new Placement(placementHost(v));
    this.router = new Router(routerHost(v, this.placement));
    this.saver = new SnapshotSaver(saveHost(v, this.placement, this.router));
  }

  /** Register more endpoints (ACL, ...) before start(). */
  addEndpoints(eps: Record<string, Endpoint>): void {
    for (const [k, v] of Object.entries(eps)) {
      assert(!this.endpoints[k] || k.startsWith("Cluster."), () => `endpoint ${k} registered twice`);
      this.endpoints[k] = v;
    }
  }

  get driver(): RaftDriver | undefined {
    return this.raftNode?.driver;
  }

  get state(): StateStore {
    return this.fsm.state;
  }

  /** SIGHUP: a new cluster key list (rotation). */
  reloadKeys(keys: readonly string[]): string {
    return this.security.reloadKeys(keys);
  }

  async start(): Promise<void> {
    this.security.checkRpcExposure();
    const dataDir = this.cfg.data_dir;
    assert(dataDir, "data_dir is set");
    const stores = await openRaftStores(dataDir, logAt(this.log));
    ({ stable: this.stable, wal: this.wal, snapshots: this.snapshots } = stores);
    this.nodeId = this.stable.get().nodeId;
    this.members.names.set(this.nodeId, this.cfg.name);
    const staged = new StagedSnapshots(join(dataDir, "staged"), this.log);
    await staged.init();
    const restorer = new RestoreCoordinator(
      restoreHost(this.view, this.placement, this.leadership, this.versions),
      staged,
      await staged.appliedRestores(),
    );
    this.restorer = restorer;
    restorer.register(this.fsm);
    const raftNode = new RaftNode({
      ...shared(this.view),
      ...stores,
      fsm: this.fsm,
      drops: this.raftDrops,
      advertise: () => this.cfg.advertise.rpc,
      onLeaderChange: (lead, isLeader, term) => {
        this.leadership.onLeaderChange(lead, isLeader, term);
        if (isLeader) void this.versions.leading();
      },
      restoreCompactIndex: () => restorer.compactIndex,
    });
    this.raftNode = raftNode;
    const rpc = new RpcServer({
      bindAddr: this.cfg.bind_addr,
      port: this.cfg.ports.rpc,
      maxConnsPerClient: this.cfg.limits.rpc_max_conns_per_client,
      onRefused: (reason) => this.observeRefusal("rpc", reason),
      log: logAt(this.log),
      info: () => ({ ID: this.nodeId, Name: this.cfg.name, Region: this.cfg.region, Version: VERSION }),
      ...this.security.rpcOptions(),
    });
    this.rpc = rpc;
    this.registerEndpoints();
    this.registerRpc(rpc, raftNode, restorer);
    const { port } = await rpc.listen();
    this.rpcPort = port;
    this.status.registerGauges();

    const hasState = stores.wal.lastIndex() > 0 || stores.snapshots.latest() !== undefined || this.stable.get().hardState.term > 0;
    if (hasState) {
      await raftNode.start();
    } else if (this.cfg.server.bootstrap_expect === 1) {
      await raftNode.bootstrap([{ id: this.nodeId, address: this.cfg.advertise.rpc, voter: true }]);
    } else {
      this.formation.schedule(0);
    }
    restorer.start();
    this.versions.start();
    this.log.info("server started", {
      id: this.nodeId,
      rpc: `${this.cfg.bind_addr}:${port}`,
      advertise: this.cfg.advertise.rpc,
      region: this.cfg.region,
    });
  }

  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.formation.stop();
    this.versions.stop();
    this.restorer?.stop();
    this.security.stop();
    this.leadership.revoke();
    this.raftNode?.stop();
    this.raftDrops.close();
    await this.rpc?.close().catch(() => {});
    await this.pool.close().catch(() => {});
    await this.wal?.close().catch(() => {});
    this.stable?.close();
  }

  private fatal(e: unknown): void {
    this.log.error("fatal error; stopping the server", { error: e instanceof Error ? e.message : String(e) });
    // A disk or invariant failure must not continue to serve or vote.
    process.exit(2);
  }

  /** The applied configuration. */
  currentConfig(): Configuration {
    return this.members.config;
  }

  // ---- endpoints and routing ----

  private registerEndpoints(): void {
    this.endpoints = {
      ...this.endpoints,
      ...varEndpoints(
        () => this.state,
        () => this.leadership.locks,
      ),
      ...operatorEndpoints({
        leaderAddress: () => leaderAddr(this.view),
        voters: () => this.members.config.servers.filter((s) => s.voter).map((s) => s.address),
        regions: () => this.regions(),
        configuration: () => this.membership.configuration(),
        removePeer: (id) => this.membership.removePeer(id),
        transferLeadership: (id) => this.membership.transferLeadership(id),
        autopilotHealth: async () => {
          const ap = this.leadership.autopilot;
          if (!ap) throw new EdgeError("NO_LEADER", "this server is not the leader");
          return withNames(ap.report(), await this.membership.configuration());
        },
        snapshotHistory: () => clusterSnapshotHistory(this.view),
      }),
      ...raftStatsEndpoints(raftStatsHost(this.view)),
      ...gatedEndpoints(this.fsm, this.versions, (op) => proposeOp(this.view, op)),
      ...autopilotEndpoints({
        committed: this.fsm.autopilot,
        fromFile: () => autopilotConfigOf(this.cfg),
        require: (name) => this.versions.require(name),
        propose: (op) => proposeOp(this.view, op),
      }),
      "Cluster.AddNonvoter": {
        kind: "write",
        args: addNonvoterArgs,
        handler: async (a: JoinRequest) => ({ reply: await this.membership.addNonvoter(a) }),
      },
    };
  }

  private regions(): string[] {
    // Not through this.placement: the security module asks while the constructor runs (TLS peer names).
    return regionsOf(this.cfg.region, this.cfg.federation);
  }

  private registerRpc(rpc: RpcServer, raftNode: RaftNode, restorer: RestoreCoordinator): void {
    registerRpcMethods(rpc, {
      call: (method, args, q) => this.call(method, args, q),
      discover: (a) => this.formation.discover(a),
      nameServer: (id, name) => this.members.names.set(id, name),
      raftStats: () => raftStatsHost(this.view).own(),
      versions: () => {
        const stopped = stoppedAt(this.view);
        return { ...ownReport(this.nodeId), ...(stopped ? { ApplyStopped: stopped } : {}) };
      },
      snapshot: {
        save: (q, stream, mode) => this.saver.serve(q, stream, mode),
        restore: (a, stream) => restorer.serve(a, stream),
        stage: (a, stream) => restorer.receiveStage(a, stream),
        fetchStaged: (a, stream) => restorer.serveStaged(a, stream),
        applied: () => this.driver?.applied ?? 0,
        unstage: (a) => restorer.unstage(a),
        history: () => localSnapshotHistory(this.view),
      },
    });
    raftNode.register(rpc);
  }

  // ---- Backend (HTTP) ----

  async call(method: string, args: Record<string, unknown>, q: QueryOptions & { hops?: number }): Promise<CallResult> {
    return this.router.call(method, args, q);
  }

  readonly self = (): Record<string, unknown> => this.status.self();
  readonly health = (): { ok: boolean; message: string } => this.status.health();
  readonly stateHash = (): StateHash => {
    const view = this.fsm.state.view();
    return stateHash(view, this.fsm.clusterVersion.at(view.index));
  };
  readonly metrics = (format: "json" | "prometheus"): string | Record<string, unknown> => this.status.metrics(format);
  readonly observeRefusal = (port: "http" | "rpc", reason: string): void => this.status.observeRefusal(port, reason);
  readonly observeHttp = (route: string, method: string, status: number): void => this.status.observeHttp(route, method, status);

  async snapshotSave(q: QueryOptions): Promise<SnapshotDownload> {
    return this.saver.save(q);
  }

  async snapshotRestore(body: ReadableStream<Uint8Array>, q: QueryOptions & { dryRun: boolean; signal: AbortSignal }): Promise<unknown> {
    assert(this.restorer, "the server is started");
    return this.restorer.restore(body, q);
  }
}
