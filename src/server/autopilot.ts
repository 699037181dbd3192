// Autopilot: the leader's view of every server's health, and the membership changes it makes on
// its own — promoting a new server once it has been healthy for the stabilization time, and
// removing a failed voter once a healthy replacement has taken its place or it has stayed failed
// for the dead-server time. What users of Nomad and Consul trip over is autopilot removing servers
// during a partition, so removal is refused whenever the leader cannot itself see a quorum, and
// whenever it would leave fewer healthy voters than a quorum of the last healthy configuration.
// `decide` is pure (unit-tested rule by rule); `Autopilot` samples raft and applies its answer.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/logger.ts";
import type { RaftStatus } from "../raft/raw_node.ts";
import type { Configuration } from "../raft/storage.ts";
import type { Metrics } from "./metrics.ts";
import type { AutopilotHealth } from "./operator_endpoints.ts";

/** How often the leader samples health and decides. */
export const AUTOPILOT_TICK_MS = 250;

export interface AutopilotConfig {
  cleanupDeadServers: boolean;
  lastContactThresholdMs: number;
  maxTrailingLogs: number;
  serverStabilizationMs: number;
  deadServerLastContactThresholdMs: number;
}

export function autopilotConfigOf(cfg: Config): AutopilotConfig {
  const a = cfg.server.autopilot;
  return {
    cleanupDeadServers: a.cleanup_dead_servers,
    lastContactThresholdMs: a.last_contact_threshold,
    maxTrailingLogs: a.max_trailing_logs,
    serverStabilizationMs: a.server_stabilization_time,
    deadServerLastContactThresholdMs: a.dead_server_last_contact_threshold,
  };
}

/** One server as the leader sees it at one instant. */
export interface ServerHealth {
  id: string;
  voter: boolean;
  leader: boolean;
  /** Milliseconds since it last answered (0 for the leader). */
  lastContactMs: number;
  /** The leader's last index minus this server's match. */
  lag: number;
  healthy: boolean;
  /** When it became healthy (ms clock), undefined while unhealthy. */
  stableSince: number | undefined;
  /** When it became unhealthy (ms clock), undefined while healthy. */
  failedSince: number | undefined;
}

export interface Action {
  kind: "promote" | "remove";
  id: string;
  reason: string;
}

export interface Decision {
  actions: Action[];
  /** Why nothing was removed although a voter failed, for the log. */
  held?: string;
}

export function quorum(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** Nomad's rule: heard from within the threshold and within max_trailing_logs of the leader. */
export function isHealthy(cfg: AutopilotConfig, s: { leader: boolean; lastContactMs: number; lag: number }): boolean {
  return s.leader || (s.lastContactMs <= cfg.lastContactThresholdMs && s.lag <= cfg.maxTrailingLogs);
}

/** Healthy voters beyond a quorum: how many more voters may fail with the cluster still writing. */
export function failureTolerance(servers: readonly ServerHealth[]): number {
  const voters = servers.filter((s) => s.voter);
  const healthy = voters.filter((s) => s.healthy).length;
  return Math.max(0, healthy - quorum(voters.length));
}

/**
 * The changes to make now: at most one promotion (a stable healthy non-voter) and, when none, at
 * most one removal. `lastHealthyVoters` is the voter count when every voter was last healthy.
 * Promotion goes first so that a failed voter's replacement votes before the failed one leaves.
 */
export function decide(cfg: AutopilotConfig, servers: readonly ServerHealth[], now: number, lastHealthyVoters: number): Decision {
  const voters = servers.filter((s) => s.voter);
  // The leader counts the voters it heard from within the threshold, itself included: a leader cut
  // off from a quorum would step down soon, and everything it sees as failed is suspect.
  const reachable = voters.filter((s) => s.leader || s.lastContactMs <= cfg.lastContactThresholdMs).length;
  if (reachable < quorum(voters.length)) return { actions: [], held: "the leader cannot reach a quorum of voters" };
  const ready = servers.find(
    (s) => !s.voter && s.healthy && s.stableSince !== undefined && now - s.stableSince >= cfg.serverStabilizationMs,
  );
  if (ready) return { actions: [{ kind: "promote", id: ready.id, reason: "healthy for the stabilization time" }] };
  if (!cfg.cleanupDeadServers) return { actions: [] };
  const failed = voters.filter((s) => !s.healthy && !s.leader);
  if (failed.length === 0) return { actions: [] };
  const healthyVoters = voters.length - failed.length;
  const floor = quorum(Math.max(lastHealthyVoters, 1));
  for (const f of failed) {
    const remaining = voters.length - 1;
    if (healthyVoters < floor)
      return {
        actions: [],
        held: `removing ${f.id} would leave ${healthyVoters} healthy voters, below a quorum (${floor}) of the last healthy configuration`,
      };
    // A replacement has taken its place: every other voter is healthy and there are as many as when all
    // were healthy. The failure must have lasted the stabilization time too: a voter that blips while
    // a new server is promoted (growing the cluster) is slow, not replaced.
    const failedFor = f.failedSince === undefined ? 0 : now - f.failedSince;
    if (failed.length === 1 && remaining >= lastHealthyVoters && failedFor >= cfg.serverStabilizationMs)
      return { actions: [{ kind: "remove", id: f.id, reason: "failed, and a healthy replacement votes in its place" }] };
    if (f.failedSince !== undefined && now - f.failedSince >= cfg.deadServerLastContactThresholdMs)
      return { actions: [{ kind: "remove", id: f.id, reason: "failed for longer than dead_server_last_contact_threshold" }] };
  }
  return { actions: [], held: "no replacement is ready and no failed voter has been failed long enough" };
}

/** What autopilot needs from the server. */
export interface AutopilotHost {
  readonly log: Logger;
  readonly stats: Metrics;
  /** A raft tick's length: the core counts time since a follower's last answer in ticks. */
  readonly tickMs: number;
  /** The leader's raft status (with progress), undefined when not leading. */
  status(): RaftStatus | undefined;
  config(): Configuration;
  settings(): AutopilotConfig;
  /** Proposes a membership change; throws when one is already in flight. */
  promote(id: string): void;
  remove(id: string): Promise<void>;
}

/** One server in `GET /v1/operator/autopilot/health`, before names and versions are added. */
export interface HealthRow {
  ID: string;
  Address: string;
  Leader: boolean;
  Voter: boolean;
  Healthy: boolean;
  LastContact: string;
  LastTerm: number;
  LastIndex: number;
  StableSince: string;
}

/** The report with each server's name and version from the raft configuration as operators see it. */
export function withNames(
  r: ReturnType<Autopilot["report"]>,
  conf: { Servers: { ID: string; Node: string; Version: string }[] },
): AutopilotHealth {
  const by = new Map(conf.Servers.map((s) => [s.ID, s]));
  return {
    Healthy: r.Healthy,
    FailureTolerance: r.FailureTolerance,
    Servers: r.Servers.map((s) => ({ ...s, Name: by.get(s.ID)?.Node ?? s.ID, Version: by.get(s.ID)?.Version ?? "" })),
  };
}

export function durationString(ms: number): string {
  if (ms < 1) return "0s";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;
}

export class Autopilot {
  private readonly since = new Map<string, { healthy: boolean; at: number; wall: number }>();
  private lastHealthyVoters: number;
  private term = 0;
  private busy = false;
  private held: string | undefined;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly host: AutopilotHost) {
    this.lastHealthyVoters = host.config().servers.filter((s) => s.voter).length;
    this.timer = setInterval(() => this.tick(), AUTOPILOT_TICK_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Samples every server's health now. */
  sample(now = performance.now()): ServerHealth[] {
    const st = this.host.status();
    if (!st?.progress) return [];
    const cfg = this.host.settings();
    this.term = st.term;
    const out: ServerHealth[] = [];
    const present = new Set<string>();
    for (const s of this.host.config().servers) {
      present.add(s.id);
      const p = st.progress[s.id];
      const leader = s.id === st.id;
      const lastContactMs = leader ? 0 : p ? p.heardAgoTicks * this.host.tickMs : Number.POSITIVE_INFINITY;
      const lag = leader ? 0 : Math.max(0, st.lastIndex - (p?.match ?? 0));
      const healthy = isHealthy(cfg, { leader, lastContactMs, lag });
      let mark = this.since.get(s.id);
      if (!mark || mark.healthy !== healthy) {
        mark = { healthy, at: now, wall: Date.now() };
        this.since.set(s.id, mark);
      }
      out.push({
        id: s.id,
        voter: s.voter,
        leader,
        lastContactMs,
        lag,
        healthy,
        stableSince: healthy ? mark.at : undefined,
        failedSince: healthy ? undefined : mark.at,
      });
    }
    for (const id of this.since.keys()) if (!present.has(id)) this.since.delete(id);
    const voters = out.filter((s) => s.voter);
    if (voters.every((s) => s.healthy)) this.lastHealthyVoters = voters.length;
    this.host.stats.set("edgenode_autopilot_healthy", voters.every((s) => s.healthy) ? 1 : 0, {}, "1 when every voter is healthy");
    this.host.stats.set("edgenode_autopilot_servers_healthy", out.filter((s) => s.healthy).length, {}, "servers autopilot sees as healthy");
    this.host.stats.set(
      "edgenode_autopilot_failure_tolerance",
      failureTolerance(out),
      {},
      "voters that may fail with writes still committing",
    );
    return out;
  }

  private tick(): void {
    if (this.busy) return;
    const servers = this.sample();
    if (servers.length === 0) return;
    const d = decide(this.host.settings(), servers, performance.now(), this.lastHealthyVoters);
    // Why a failed voter stays, once per change of reason (not every tick).
    if (d.held !== this.held) {
      this.held = d.held;
      // A voter that misses one heartbeat would say "no replacement" at info on a loaded machine: debug.
      if (d.held?.includes("quorum")) this.host.log.info("autopilot is not removing failed servers", { reason: d.held });
      else if (d.held) this.host.log.debug("autopilot is not removing failed servers", { reason: d.held });
    }
    const a = d.actions[0];
    if (!a) return;
    this.busy = true;
    const counter = a.kind === "promote" ? "edgenode_autopilot_promotions_total" : "edgenode_autopilot_removals_total";
    const run = async () => {
      if (a.kind === "promote") this.host.promote(a.id);
      else await this.host.remove(a.id);
    };
    run()
      .then(() => {
        this.host.stats.inc(counter, { reason: a.reason }, 1, `autopilot ${a.kind}s by reason`);
        this.host.log.info(a.kind === "promote" ? "autopilot promoted a server" : "autopilot removed a failed server", {
          id: a.id,
          reason: a.reason,
        });
      })
      .catch((e: Error) => this.host.log.debug("autopilot change deferred", { id: a.id, kind: a.kind, reason: e.message }))
      .finally(() => {
        this.busy = false;
      });
  }

  /** The health report's rows in Nomad's shape (names and versions are added by the caller). */
  report(): { Healthy: boolean; FailureTolerance: number; Servers: HealthRow[] } {
    const servers = this.sample();
    const addr = new Map(this.host.config().servers.map((s) => [s.id, s.address]));
    const st = this.host.status();
    return {
      Healthy: servers.length > 0 && servers.every((s) => s.healthy),
      FailureTolerance: failureTolerance(servers),
      Servers: servers.map((s) => {
        const mark = this.since.get(s.id);
        const match = s.leader ? (st?.lastIndex ?? 0) : (st?.progress?.[s.id]?.match ?? 0);
        return {
          ID: s.id,
          Address: addr.get(s.id) ?? "",
          Leader: s.leader,
          Voter: s.voter,
          Healthy: s.healthy,
          LastContact: Number.isFinite(s.lastContactMs) ? durationString(s.lastContactMs) : "never",
          LastTerm: this.term,
          LastIndex: match,
          StableSince: s.healthy && mark ? new Date(mark.wall).toISOString() : "",
        };
      }),
    };
  }
}
