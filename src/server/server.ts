import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import type { Backend, CallResult, QueryOptions, SnapshotDownload } from "./backend.ts";
import { assert } from "../lib/assert.ts";
import { encode } from "../lib/codec.ts";
import { withDeadline } from "../lib/deadline.ts";
import type { Logger } from "../lib/logger.ts";
import { VERSION } from "../lib/version.ts";
import { NotLeaderError } from "../raft/errors.ts";
import type { RawNode } from "../raft/raw_node.ts";
import type { Configuration, SnapshotMeta } from "../raft/storage.ts";
import type { Command } from "../state/commands.ts";
import type { StateStore } from "../state/state_store.ts";
import type { SnapshotStore } from "../storage/snapshot_store.ts";
import type { StableStore } from "../storage/stable_store.ts";
import type { Wal } from "../storage/wal.ts";
import { ConnPool } from "../transport/pool.ts";
import { RefusalLog } from "../lib/refusal_log.ts";
import { RpcServer } from "../transport/rpc_server.ts";
import type { Endpoint } from "./endpoints.ts";
import { Fsm, type ServerOp } from "./fsm.ts";
import { Metrics } from "./metrics.ts";
import { operatorEndpoints } from "./operator_endpoints.ts";
import type { RaftDriver } from "./raft_driver.ts";
import { ELECTION_TICKS, openRaftStores, TICK_MS } from "./raft_start.ts";
import { RaftNode } from "./raft_node.ts";
import { Members } from "./members.ts";
import { ServerSecurity } from "./server_security.ts";
import { Status } from "./status.ts";
import { addNonvoterArgs, registerRpcMethods } from "./rpc_methods.ts";
import { type JoinRequest, Membership } from "./membership.ts";
import { Formation } from "./formation.ts";
import { Leadership } from "./leadership.ts";
import type { SnapshotSource } from "./raft_snapshots.ts";
import { varEndpoints } from "./var_endpoints.ts";
import { SnapshotSaver } from "./snapshot_save.ts";
import { RestoreCoordinator, type RestoreHost } from "./snapshot_restore.ts";
import { confChangePending } from "./restore_leader.ts";
import { leaderAddress, Placement, waitForLeader } from "./placement.ts";
import { Router } from "./router.ts";
import { StagedSnapshots } from "./staged_snapshots.ts";
import { SnapshotSchedule } from "./snapshot_schedule.ts";

/** A leadership transfer finishes or is abandoned within one election timeout (raft.ts transferLeadership). */
const TRANSFER_SETTLE_MS = ELECTION_TICKS * TICK_MS;

export interface ServerOptions {
  config: Config;
  logger: Logger;
  /** How often `insecure_rpc` is warned about again; default hourly (tests shorten it). */
  insecureWarningMs?: number;
}

export class Server implements Backend {
  readonly stats = new Metrics();
  readonly cfg: Config;
  readonly log: Logger;
  readonly fsm: Fsm;
  readonly pool: ConnPool;
  snapshots!: SnapshotStore;
  nodeId = "";
  rpcPort = 0;
  private stable!: StableStore;
  private wal!: Wal;
  private rpc!: RpcServer;
  /** Raft here: the core's start, its snapshots, the peer transport; made by start() once the stores are open. */
  private raftNode: RaftNode | undefined;
  private readonly members: Members;
  private readonly security: ServerSecurity;
  private readonly leadership: Leadership;
  private readonly membership: Membership;
  private readonly formation: Formation;
  private readonly status: Status;
  /** Raft messages dropped by the gate: logged at a bounded rate. */
  private readonly raftDrops: RefusalLog;
  private endpoints: Record<string, Endpoint> = {};
  private stopping = false;
  private leaderWaiters: (() => void)[] = [];
  private saver = new SnapshotSaver(this);
  restorer!: RestoreCoordinator;
  /** Where a request runs (here, on the leader, in another region); routing of unary calls on it. */
  readonly placement: Placement;
  private readonly router: Router;
  /**
   * Permission check run where a call executes (after forwarding). Unset when ACLs are off. Throws
   * EdgeError PERMISSION_DENIED. Installed by the ACL module.
   */
  authorize: ((method: string, args: Record<string, unknown>, token: string | undefined) => void | Promise<void>) | undefined;

  /** Register more endpoints (ACL, ...) before start(). */
  addEndpoints(eps: Record<string, Endpoint>): void {
    for (const [k, v] of Object.entries(eps)) {
      assert(!this.endpoints[k] || k.startsWith("Cluster."), () => `endpoint ${k} registered twice`);
      this.endpoints[k] = v;
    }
  }

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
        ...this.shared(),
        regions: () => this.regions(),
        dropSessions: (drop, reason) => (this.rpc ? this.rpc.dropSessions(drop, reason) : 0),
      },
      opts.insecureWarningMs,
    );
    this.pool = new ConnPool({ log: (level, msg) => this.logAt(level, msg), ...this.security.dialSecurity() });
    const shared = this.shared();
    this.leadership = new Leadership({
      ...shared,
      state: () => this.state,
      propose: (cmd) => this.proposeCommand(cmd),
      leaderChanged: () => {
        for (const w of this.leaderWaiters.splice(0)) w();
      },
      startSchedule: () => {
        if (!this.cfg.snapshot_schedule.enabled) return undefined;
        const schedule = new SnapshotSchedule(this, this.cfg.snapshot_schedule);
        schedule.start();
        return schedule;
      },
    });
    this.membership = new Membership({ ...shared, waitForLeaderChange: (ms) => this.waitForLeaderChange(ms) });
    this.formation = new Formation({
      ...shared,
      advertise: () => this.advertiseRpc,
      raftRunning: () => this.node !== undefined,
      bootstrap: (servers) => this.raftNode?.bootstrap(servers) ?? Promise.resolve(),
    });
    this.status = new Status({
      ...shared,
      lastLogIndex: () => this.wal?.lastIndex() ?? 0,
      lastSnapshotIndex: () => this.raftNode?.raftSnapshots.lastIndex ?? 0,
    });
    this.raftDrops = new RefusalLog("raft", (level, msg) => this.logAt(level, msg));
    this.placement = new Placement({
      region: () => this.cfg.region,
      federation: () => this.cfg.federation,
      isLeader: () => this.driver?.isLeader === true,
      leaderAddress: () => this.leaderAddr(),
      waitForLeader: (ms) => waitForLeader(this.leaderWaiters, () => Boolean(this.driver?.leader), ms),
    });
    this.router = new Router({
      placement: this.placement,
      stats: this.stats,
      log: this.log,
      transferSettleMs: TRANSFER_SETTLE_MS,
      endpoints: () => this.endpoints,
      raft: () => this.driver,
      authorize: () => this.authorize,
      state: () => this.state,
      swapped: (signal) => this.fsm.swapped(signal),
      propose: (cmd) => this.proposeCommand(cmd),
      waitForLeaderChange: (ms) => this.waitForLeaderChange(ms),
      rpc: (addr, method, args, o) => this.pool.call(addr, method, args, o),
    });
  }

  /** The view of this server most host interfaces ask for; each module takes the part its interface declares. */
  private shared() {
    return {
      cfg: this.cfg,
      log: this.log,
      stats: this.stats,
      pool: this.pool,
      members: this.members,
      nodeId: () => this.nodeId,
      node: () => this.node,
      driver: () => this.driver,
      config: () => this.config,
      stopping: () => this.stopping,
      leaderAddr: () => this.leaderAddr(),
      logAt: (level: string, msg: string) => this.logAt(level, msg),
      fatal: (e: unknown) => this.fatal(e),
    };
  }

  get node(): RawNode | undefined {
    return this.raftNode?.node;
  }

  get driver(): RaftDriver | undefined {
    return this.raftNode?.driver;
  }

  get state(): StateStore {
    return this.fsm.state;
  }

  get advertiseRpc(): string {
    return this.cfg.advertise.rpc;
  }

  private get config(): Configuration {
    return this.members.config;
  }

  private get lastSnapshotIndex(): number {
    return this.raftNode?.raftSnapshots.lastIndex ?? 0;
  }

  /** SIGHUP: a new cluster key list (rotation). */
  reloadKeys(keys: readonly string[]): string {
    return this.security.reloadKeys(keys);
  }

  private logAt(level: string, msg: string): void {
    if (level === "error") this.log.error(msg);
    else if (level === "warn") this.log.warn(msg);
    else if (level === "info") this.log.info(msg);
    else this.log.debug(msg);
  }

  async start(): Promise<void> {
    this.security.checkRpcExposure();
    const dataDir = this.cfg.data_dir;
    assert(dataDir, "data_dir is set");
    ({ stable: this.stable, wal: this.wal, snapshots: this.snapshots } = await openRaftStores(dataDir, (l, m) => this.logAt(l, m)));
    this.nodeId = this.stable.get().nodeId;
    this.members.names.set(this.nodeId, this.cfg.name);
    const staged = new StagedSnapshots(join(dataDir, "staged"), this.log);
    await staged.init();
    this.restorer = new RestoreCoordinator(this.restoreHost(), staged, await staged.appliedRestores());
    this.restorer.register(this.fsm);
    this.raftNode = new RaftNode({
      ...this.shared(),
      fsm: this.fsm,
      stable: this.stable,
      wal: this.wal,
      snapshots: this.snapshots,
      drops: this.raftDrops,
      advertise: () => this.advertiseRpc,
      onLeaderChange: (lead, isLeader, term) => this.leadership.onLeaderChange(lead, isLeader, term),
      restoreCompactIndex: () => this.restorer.compactIndex,
    });
    this.rpc = new RpcServer({
      bindAddr: this.cfg.bind_addr,
      port: this.cfg.ports.rpc,
      maxConnsPerClient: this.cfg.limits.rpc_max_conns_per_client,
      onRefused: (reason) => this.observeRefusal("rpc", reason),
      log: (level, msg) => this.logAt(level, msg),
      info: () => ({ ID: this.nodeId, Name: this.cfg.name, Region: this.cfg.region, Version: VERSION }),
      ...this.security.rpcOptions(),
    });
    this.registerEndpoints();
    this.registerRpc();
    const { port } = await this.rpc.listen();
    this.rpcPort = port;
    this.status.registerGauges();

    const hasState = this.wal.lastIndex() > 0 || this.snapshots.latest() !== undefined || this.stable.get().hardState.term > 0;
    if (hasState) {
      await this.raftNode.start();
    } else if (this.cfg.server.bootstrap_expect === 1) {
      await this.raftNode.bootstrap([{ id: this.nodeId, address: this.advertiseRpc, voter: true }]);
    } else {
      this.formation.schedule(0);
    }
    this.restorer.start();
    this.log.info("server started", {
      id: this.nodeId,
      rpc: `${this.cfg.bind_addr}:${port}`,
      advertise: this.advertiseRpc,
      region: this.cfg.region,
    });
  }

  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.formation.stop();
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

  fatal(e: unknown): void {
    this.log.error("fatal error; stopping the server", { error: e instanceof Error ? e.message : String(e) });
    // A disk or invariant failure must not continue to serve or vote.
    process.exit(2);
  }

  /** A raft snapshot of the applied state (see RaftSnapshots.take); `from`, a restore's staged file. */
  takeSnapshot(from?: SnapshotSource): Promise<SnapshotMeta> {
    assert(this.raftNode, "raft is running");
    return this.raftNode.raftSnapshots.take(from);
  }

  // ---- leadership ----

  /** Re-run establish-leadership from the current state (after a restore swapped it). */
  async reassertLeadership(): Promise<void> {
    this.leadership.reassert();
  }

  private leaderAddr(): string {
    return leaderAddress(this.driver?.leader, this.config.servers);
  }

  // ---- proposals ----

  /** The core's refusals (NotLeaderError, ProposalDroppedError) pass through: `route` decides on a retry. */
  async proposeCommand(cmd: Command | ServerOp, timeoutMs?: number): Promise<unknown> {
    const driver = this.driver;
    // Leadership can end between route's check and here (the handler awaits in between).
    if (!driver?.isLeader) throw new NotLeaderError(driver?.leader ?? "");
    return driver.propose(encode(cmd), timeoutMs);
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
        leaderAddress: () => this.leaderAddr(),
        voters: () => this.config.servers.filter((s) => s.voter).map((s) => s.address),
        regions: () => this.regions(),
        configuration: () => this.membership.configuration(),
        removePeer: (id) => this.membership.removePeer(id),
        transferLeadership: (id) => this.membership.transferLeadership(id),
      }),
      "Cluster.AddNonvoter": {
        kind: "write",
        args: addNonvoterArgs,
        handler: async (a: JoinRequest) => ({ reply: await this.membership.addNonvoter(a) }),
      },
    };
  }

  regions(): string[] {
    return this.placement.regions();
  }

  async call(method: string, args: Record<string, unknown>, q: QueryOptions & { hops?: number }): Promise<CallResult> {
    return this.router.call(method, args, q);
  }

  private registerRpc(): void {
    registerRpcMethods(this.rpc, {
      call: (method, args, q) => this.call(method, args, q),
      discover: (a) => this.formation.discover(a),
      nameServer: (id, name) => this.members.names.set(id, name),
      snapshot: {
        save: (q, stream, mode) => this.saver.serve(q, stream, mode),
        restore: (a, stream) => this.restorer.serve(a, stream),
        stage: (a, stream) => this.restorer.receiveStage(a, stream),
        fetchStaged: (a, stream) => this.restorer.serveStaged(a, stream),
        applied: () => this.driver?.applied ?? 0,
        unstage: (a) => this.restorer.unstage(a),
      },
    });
    assert(this.raftNode, "the raft node is made before the RPC methods");
    this.raftNode.register(this.rpc);
  }

  /** Resolves at the next leader change, or after `ms`. */
  private waitForLeaderChange(ms: number): Promise<void> {
    const changed = new Promise<void>((resolve) => this.leaderWaiters.push(resolve));
    return withDeadline(changed, Math.max(0, ms), "leader change").catch(() => {});
  }

  // ---- Backend (HTTP) ----

  readonly self = (): Record<string, unknown> => this.status.self();
  readonly health = (): { ok: boolean; message: string } => this.status.health();
  readonly metrics = (format: "json" | "prometheus"): string | Record<string, unknown> => this.status.metrics(format);
  readonly observeRefusal = (port: "http" | "rpc", reason: string): void => this.status.observeRefusal(port, reason);
  readonly observeHttp = (route: string, method: string, status: number): void => this.status.observeHttp(route, method, status);

  async snapshotSave(q: QueryOptions): Promise<SnapshotDownload> {
    return this.saver.save(q);
  }

  async snapshotRestore(body: ReadableStream<Uint8Array>, q: QueryOptions & { dryRun: boolean; signal: AbortSignal }): Promise<unknown> {
    return this.restorer.restore(body, q);
  }

  // ---- what the snapshot save/restore modules use ----

  termOf(index: number): number {
    return this.wal.term(index);
  }

  currentConfig(): Configuration {
    return this.config;
  }

  async authorizeCall(method: string, args: Record<string, unknown>, token: string | undefined): Promise<void> {
    if (this.authorize) await this.authorize(method, args, token);
  }

  queryMeta(index: number) {
    return this.router.meta(index);
  }

  /** The restore's view of this server (snapshot_restore.ts). */
  private restoreHost(): RestoreHost {
    return {
      log: this.log,
      stats: this.stats,
      placement: this.placement,
      dataDir: () => this.cfg.data_dir,
      selfId: () => this.nodeId,
      servers: () => this.config.servers,
      isLeader: () => this.driver?.isLeader === true,
      applied: () => this.driver?.applied ?? 0,
      lastSnapshotIndex: () => this.lastSnapshotIndex,
      authorize: (method, token) => this.authorizeCall(method, {}, token),
      membershipChangePending: () => this.driver !== undefined && confChangePending(this.driver.applied, this.wal),
      propose: (op, ms) => this.proposeCommand(op, ms),
      reassertLeadership: () => this.reassertLeadership(),
      takeSnapshot: (from) => this.takeSnapshot(from),
      openStream: (addr, method, args, o) => this.pool.openStream(addr, method, args, o),
      call: (addr, method, args, o) => this.pool.call(addr, method, args, o),
      fatal: (e) => this.fatal(e),
    };
  }
}
