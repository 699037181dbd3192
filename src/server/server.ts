import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import type { Backend, CallResult, QueryOptions, SnapshotDownload } from "../http/backend.ts";
import { assert } from "../lib/assert.ts";
import { encode } from "../lib/codec.ts";
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError, hasCode } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { VERSION } from "../lib/version.ts";
import { NotLeaderError } from "../raft/errors.ts";
import type { RawNode } from "../raft/raw_node.ts";
import { EntryType, type Configuration, type SnapshotMeta } from "../raft/storage.ts";
import type { Command } from "../state/commands.ts";
import type { StateStore } from "../state/state_store.ts";
import type { TableName } from "../state/tables.ts";
import type { SnapshotStore } from "../storage/snapshot_store.ts";
import type { StableStore } from "../storage/stable_store.ts";
import type { Wal } from "../storage/wal.ts";
import { ConnPool } from "../transport/pool.ts";
import { RefusalLog } from "../lib/refusal_log.ts";
import { RpcServer } from "../transport/rpc_server.ts";
import type { Endpoint, EndpointContext } from "./endpoints.ts";
import { Fsm, type ServerOp } from "./fsm.ts";
import { idleBounded, UPLOAD_IDLE_MS } from "./snapshot_restore.ts";
import { Metrics } from "./metrics.ts";
import { operatorEndpoints, unknownRegion } from "./operator_endpoints.ts";
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
import { retryOnNextLeader } from "./write_retry.ts";
import { SnapshotSaver } from "./snapshot_save.ts";
import { RestoreCoordinator, type RestoreOp } from "./snapshot_restore.ts";
import { StagedSnapshots } from "./staged_snapshots.ts";
import { SnapshotSchedule } from "./snapshot_schedule.ts";

const LEADER_WAIT_MS = 5_000;
/** A leadership transfer finishes or is abandoned within one election timeout (raft.ts transferLeadership). */
const TRANSFER_SETTLE_MS = ELECTION_TICKS * TICK_MS;
const MAX_FORWARD_HOPS = 2;
const JITTER_FRACTION = 16;
/** Bound on a forwarded call beyond any blocking wait. */
const FORWARD_TIMEOUT_MS = 12_000;

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
  private cleanupTimer: ReturnType<typeof setInterval> | undefined;
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
      this.log,
      () => this.cfg.region,
      () => this.stable.get().clusterId,
      (i, op) => this.applyServerOp(i, op),
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
    this.restorer = new RestoreCoordinator(this, staged, await staged.appliedRestores());
    this.raftNode = new RaftNode({
      ...this.shared(),
      fsm: this.fsm,
      stable: this.stable,
      wal: this.wal,
      snapshots: this.snapshots,
      drops: this.raftDrops,
      advertise: () => this.advertiseRpc,
      onLeaderChange: (lead, isLeader, term) => this.leadership.onLeaderChange(lead, isLeader, term),
      restoreCompactIndex: () => this.restoreCompactIndex,
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
    this.cleanupTimer = setInterval(() => {
      this.cleanupStaged().catch((e: unknown) =>
        this.log.warn("cleaning up staged snapshots failed; retrying in 30s", { error: (e as Error).message }),
      );
    }, 30_000);
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
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
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

  /**
   * Resolves true once a leader is known, false after `ms` without one. A change that leaves no leader
   * (an election starting, say after the leader restarted) keeps waiting: it is not an answer.
   */
  private waitForLeader(ms: number): Promise<boolean> {
    if (this.driver?.leader) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.leaderWaiters = this.leaderWaiters.filter((f) => f !== done);
        resolve(Boolean(this.driver?.leader));
      }, ms);
      const done = () => {
        if (!this.driver?.leader) {
          this.leaderWaiters.push(done);
          return;
        }
        clearTimeout(t);
        resolve(true);
      };
      this.leaderWaiters.push(done);
    });
  }

  private leaderAddr(): string {
    const lead = this.driver?.leader;
    if (!lead) return "";
    return this.config.servers.find((s) => s.id === lead)?.address ?? "";
  }

  // ---- proposals ----

  /** The core's refusals (NotLeaderError, ProposalDroppedError) pass through: `route` decides on a retry. */
  async proposeCommand(cmd: Command | ServerOp, timeoutMs?: number): Promise<unknown> {
    const driver = this.driver;
    // Leadership can end between route's check and here (the handler awaits in between).
    if (!driver?.isLeader) throw new NotLeaderError(driver?.leader ?? "");
    return driver.propose(encode(cmd), timeoutMs);
  }

  /** Server-level ops in raft entries. Restore is added by the snapshot restore issue. */
  private async applyServerOp(_index: number, op: ServerOp): Promise<unknown> {
    if (op.op === "barrier") return {};
    if (op.op === "restore") return this.restorer.apply(_index, op as RestoreOp);
    throw new EdgeError("BAD_REQUEST", `unsupported server operation ${(op as { op: string }).op}`);
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
    return [...new Set([this.cfg.region, ...Object.keys(this.cfg.federation ?? {})])].sort();
  }

  async call(method: string, args: Record<string, unknown>, q: QueryOptions & { hops?: number }): Promise<CallResult> {
    const t0 = performance.now();
    try {
      return await this.route(method, args, q);
    } finally {
      this.stats.observe("edgenode_rpc_call_ms", performance.now() - t0, { method }, "endpoint call latency (ms)");
    }
  }

  /** `holdUntil`: set once a write was refused for a moving leadership; bounds its retries (see retryWrite). */
  private async route(
    method: string,
    args: Record<string, unknown>,
    q: QueryOptions & { hops?: number },
    holdUntil?: number,
  ): Promise<CallResult> {
    if (q.region && q.region !== this.cfg.region) return this.forwardRegion(q.region, method, args, q);
    const ep = this.endpoints[method];
    if (!ep) throw new EdgeError("NOT_FOUND", `unknown method ${method}`);
    const parsed = ep.args.safeParse(args);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new EdgeError("BAD_REQUEST", `invalid arguments for ${method}: ${issue?.path.join(".") || "args"}: ${issue?.message}`);
    }
    const needsLeader = ep.kind === "write" || (ep.kind === "read" && !q.stale);
    if (needsLeader && !this.driver?.isLeader) return this.forwardLeader(method, args, q, holdUntil);
    if (ep.kind === "read" && !q.stale) await this.driver!.readBarrier();
    // The server that executes the call decides on permissions (a forwarded call carries the token).
    if (this.authorize) await this.authorize(method, parsed.data as Record<string, unknown>, q.token);
    try {
      return await ep.handler(parsed.data as never, this.endpointContext(q));
    } catch (e) {
      if (ep.kind !== "write" || !retryOnNextLeader(e)) throw e;
      return this.retryWrite(method, args, q, e, holdUntil ?? performance.now() + LEADER_WAIT_MS);
    }
  }

  /**
   * A write the raft core refused before appending it, because leadership is moving: wait for the move
   * (a transfer settles within an election timeout) and route it again, to the new leader or, if the
   * transfer was abandoned, here. Bounded by the leader hold and, once forwarded, by the hop limit.
   */
  private async retryWrite(
    method: string,
    args: Record<string, unknown>,
    q: QueryOptions & { hops?: number },
    refusal: unknown,
    holdUntil: number,
  ): Promise<CallResult> {
    const left = holdUntil - performance.now();
    if (left <= 0) throw refusal;
    this.stats.inc(
      "edgenode_rpc_write_retries_total",
      { method },
      1,
      "writes routed again after the leader refused them while leadership moved",
    );
    this.log.debug("write refused while leadership moves; routing it again", { method, reason: (refusal as Error).message });
    if (this.driver?.isLeader) await this.waitForLeaderChange(Math.min(left, TRANSFER_SETTLE_MS));
    return this.route(method, args, q, holdUntil);
  }

  private endpointContext(q: QueryOptions): EndpointContext {
    return {
      q,
      propose: (cmd) => this.proposeCommand(cmd),
      blocking: (table, key, run) => this.blocking(q, table, key, run),
    };
  }

  private meta(index: number) {
    const d = this.driver;
    return {
      index,
      knownLeader: Boolean(d?.leader),
      lastContactMs: !d ? 0 : d.isLeader ? 0 : d.lastContact ? performance.now() - d.lastContact : 0,
    };
  }

  private async blocking<T>(
    q: QueryOptions,
    table: TableName,
    key: string | undefined,
    run: () => { reply: T; index: number },
  ): Promise<CallResult<T>> {
    const first = run();
    if (q.minIndex === undefined || first.index > q.minIndex) return { reply: first.reply, meta: this.meta(first.index) };
    const wait = q.waitMs ?? 300_000;
    const deadline = performance.now() + wait + Math.random() * (wait / JITTER_FRACTION);
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), remaining);
      try {
        await Promise.race([this.state.watch(table, key, ac.signal), this.fsm.swapped()]);
      } finally {
        clearTimeout(timer);
        ac.abort();
      }
      const r = run();
      if (r.index > q.minIndex) return { reply: r.reply, meta: this.meta(r.index) };
    }
    const r = run();
    return { reply: r.reply, meta: this.meta(r.index) };
  }

  private async forwardLeader(
    method: string,
    args: Record<string, unknown>,
    q: QueryOptions & { hops?: number },
    holdUntil?: number,
  ): Promise<CallResult> {
    const hops = q.hops ?? 0;
    if (hops >= MAX_FORWARD_HOPS) throw new EdgeError("NO_LEADER", "No cluster leader (forwarding loop)");
    if (!(await this.waitForLeader(LEADER_WAIT_MS))) throw new EdgeError("NO_LEADER", "No cluster leader");
    if (this.driver?.isLeader) return this.route(method, args, q, holdUntil);
    const addr = this.leaderAddr();
    if (!addr) throw new EdgeError("NO_LEADER", "No cluster leader");
    return this.forwardTo(addr, method, args, { ...q, hops: hops + 1 });
  }

  private async forwardRegion(
    region: string,
    method: string,
    args: Record<string, unknown>,
    q: QueryOptions & { hops?: number },
  ): Promise<CallResult> {
    const servers = this.cfg.federation?.[region]?.servers;
    if (!servers || servers.length === 0) throw unknownRegion(region, this.regions());
    const hops = q.hops ?? 0;
    if (hops >= MAX_FORWARD_HOPS + 1) throw new EdgeError("UNAVAILABLE", `region ${region}: forwarding loop`);
    let last: unknown;
    for (const addr of shuffle(servers)) {
      try {
        return await this.forwardTo(addr, method, args, { ...q, hops: hops + 1 });
      } catch (e) {
        last = e;
        if (!hasCode(e, "RPC", "UNAVAILABLE")) throw e;
      }
    }
    throw new EdgeError("UNAVAILABLE", `no server of region ${region} is reachable: ${(last as Error)?.message}`);
  }

  private async forwardTo(
    addr: string,
    method: string,
    args: Record<string, unknown>,
    q: QueryOptions & { hops?: number },
  ): Promise<CallResult> {
    this.stats.inc("edgenode_rpc_forwarded_total", { method });
    // The RPC header carries the timeout as an integer (ms); wait/16 is fractional for most waits.
    // A blocking query may wait its whole wait (plus jitter); anything else gets a bound that covers a
    // leader's commit under load but fails a call to a stalled leader in seconds, not minutes.
    const blockingMs = q.minIndex !== undefined ? (q.waitMs ?? 300_000) * (1 + 1 / JITTER_FRACTION) : 0;
    const timeoutMs = Math.ceil(blockingMs + FORWARD_TIMEOUT_MS);
    const reply = (await this.pool.call(
      addr,
      "Endpoint.Call",
      { method, args, q },
      { timeoutMs, ...(q.region ? { region: q.region } : {}), ...(q.token ? { authToken: q.token } : {}) },
    )) as CallResult;
    return reply;
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
    const { dryRun, signal, ...rest } = q;
    return this.restorer.restore(idleBounded(body, UPLOAD_IDLE_MS, signal), { dryRun, q: rest });
  }

  // ---- what the snapshot save/restore modules use ----

  termOf(index: number): number {
    return this.wal.term(index);
  }

  currentConfig(): Configuration {
    return this.config;
  }

  /**
   * Runs `open` against the servers of `region` in random order until one is reachable: a server that
   * is down must not fail a request another server of the region can take, and a region with none up
   * is named in the error. Only unreachable-server errors move on; any other error is the answer.
   */
  async viaRegion<T>(region: string, open: (addr: string) => Promise<T>): Promise<T> {
    const servers = this.cfg.federation?.[region]?.servers;
    if (!servers || servers.length === 0) throw unknownRegion(region, this.regions());
    let last: unknown;
    for (const addr of shuffle(servers)) {
      try {
        return await open(addr);
      } catch (e) {
        last = e;
        if (!hasCode(e, "RPC", "UNAVAILABLE")) throw e;
      }
    }
    throw new EdgeError("UNAVAILABLE", `no server of region ${region} is reachable: ${(last as Error)?.message}`);
  }

  async leaderAddressOrWait(): Promise<string> {
    if (!(await this.waitForLeader(LEADER_WAIT_MS))) throw new EdgeError("NO_LEADER", "No cluster leader");
    const addr = this.leaderAddr();
    if (!addr) throw new EdgeError("NO_LEADER", "No cluster leader");
    return addr;
  }

  async authorizeCall(method: string, args: Record<string, unknown>, token: string | undefined): Promise<void> {
    if (this.authorize) await this.authorize(method, args, token);
  }

  queryMeta(index: number) {
    return this.meta(index);
  }

  /** True while a configuration change is proposed but not yet applied. */
  membershipChangePending(): boolean {
    const d = this.driver;
    if (!d) return false;
    const last = this.wal.lastIndex();
    for (let i = d.applied + 1; i <= last; ) {
      const batch = this.wal.entries(i, last + 1, 4 << 20);
      for (const e of batch) if (e.type === EntryType.ConfChange) return true;
      i += batch.length;
    }
    return false;
  }

  /** The newest restore entry's index: takeSnapshot compacts the log through it once a snapshot covers it. */
  private restoreCompactIndex = 0;

  /** After a restore swapped the state: snapshot it so a restart or a lagging follower never needs the staged file. */
  afterRestoreApplied(index: number, snapshotId: string): void {
    this.restoreCompactIndex = Math.max(this.restoreCompactIndex, index);
    setTimeout(() => {
      // Nothing applied since the swap: the state is exactly the staged file's records, so the file
      // becomes the raft snapshot with a new header rather than being encoded again.
      const staged = this.restorer.staged.has(snapshotId) ? { index, chunks: () => this.restorer.staged.open(snapshotId) } : undefined;
      this.takeSnapshot(staged)
        .then(() => this.cleanupStaged())
        .catch((e: unknown) =>
          this.log.warn("snapshot after restore failed; will retry at the threshold", { index, error: (e as Error).message }),
        );
    }, 0);
  }

  private async cleanupStaged(): Promise<void> {
    await this.restorer.cleanup(this.lastSnapshotIndex, (index) => this.everyServerApplied(index));
  }

  /**
   * Whether every server of the configuration has applied `index` (asked over RPC; unreachable counts as
   * no). Not its match index: a follower acknowledges entries before it applies them (RaftDriver's
   * applier), so one holding a restore entry it has not applied yet may still need a peer's staged file —
   * dropping the files once all had matched left a follower thawed right after a restore fetching forever.
   */
  private async everyServerApplied(index: number): Promise<boolean> {
    if ((this.driver?.applied ?? 0) < index) return false;
    for (const s of this.config.servers) {
      if (s.id === this.nodeId) continue;
      try {
        const r = (await this.pool.call(s.address, "Snapshot.Applied", {}, { timeoutMs: 2_000 })) as { Applied?: unknown };
        if (typeof r.Applied !== "number" || r.Applied < index) return false;
      } catch {
        return false;
      }
    }
    return true;
  }
}

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
