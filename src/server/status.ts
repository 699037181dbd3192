// What this server says about itself without asking anyone: `agent self`, health, and the metrics
// (raft gauges, replication lag per peer, refused connections, HTTP requests by route).
import type { Config } from "../config/schema.ts";
import { VERSION } from "../lib/version.ts";
import { FORMATS } from "./features.ts";
import type { RawNode } from "../raft/raw_node.ts";
import type { Configuration } from "../raft/storage.ts";
import type { NotUnderstood } from "./apply_stop.ts";
import type { Metrics } from "./metrics.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** What status and metrics read from the server. */
export interface StatusHost {
  readonly cfg: Config;
  readonly stats: Metrics;
  nodeId(): string;
  node(): RawNode | undefined;
  driver(): RaftDriver | undefined;
  /** The log's last index; 0 before the log is open. */
  lastLogIndex(): number;
  /** The leader's RPC address, "" when none is known. */
  leaderAddr(): string;
  /** The applied configuration. */
  config(): Configuration;
  lastSnapshotIndex(): number;
  /** The committed cluster version (versions.ts). */
  clusterVersion(): string;
  /** The cluster id in the stable store ("" before this server joined a cluster). */
  clusterId(): string;
  /** The entry this server stopped applying at (apply_stop.ts), with how far behind its commit it is; undefined while applying. */
  applyStopped(): { report: NotUnderstood; behind: number } | undefined;
}

export class Status {
  constructor(private readonly host: StatusHost) {}

  self(): Record<string, unknown> {
    const h = this.host;
    const st = h.node()?.status();
    const driver = h.driver();
    return {
      Name: h.cfg.name,
      ID: h.nodeId(),
      Region: h.cfg.region,
      Datacenter: h.cfg.datacenter,
      Version: VERSION,
      Formats: { ...FORMATS },
      ClusterVersion: h.clusterVersion(),
      ClusterID: h.clusterId(),
      ...this.stoppedField(),
      Stats: {
        raft: {
          state: st?.state ?? "none",
          term: st?.term ?? 0,
          commit_index: st?.commit ?? 0,
          applied_index: driver?.applied ?? 0,
          last_log_index: h.lastLogIndex(),
          leader: h.leaderAddr(),
          leader_id: driver?.leader ?? "",
          num_peers: Math.max(0, h.config().servers.filter((s) => s.voter).length - 1),
          last_snapshot_index: h.lastSnapshotIndex(),
          last_contact_ms: Math.round(this.sinceLeaderContact()),
        },
      },
    };
  }

  health(): { ok: boolean; message: string } {
    // Before the leader check: a stopped server has a leader and still answers nothing current.
    const stopped = this.host.applyStopped();
    if (stopped)
      return {
        ok: false,
        message: `apply stopped at index ${stopped.report.Index}, ${stopped.behind} entries behind its commit: the entry needs ${stopped.report.Needs}${stopped.report.Feature ? ` built with feature ${stopped.report.Feature}` : ""}`,
      };
    if (this.host.driver()?.leader) return { ok: true, message: "ok" };
    return { ok: false, message: "No cluster leader" };
  }

  /** `ApplyStopped` in agent self while this server's apply is stopped. */
  private stoppedField(): Record<string, unknown> {
    const s = this.host.applyStopped();
    return s ? { ApplyStopped: { ...s.report, Behind: s.behind } } : {};
  }

  metrics(format: "json" | "prometheus"): string | Record<string, unknown> {
    this.refreshLag();
    return format === "json" ? this.host.stats.json() : this.host.stats.prometheus();
  }

  registerGauges(): void {
    const m = this.host.stats;
    m.gauge("edgenode_raft_term", "current raft term", () => this.host.node()?.status().term ?? 0);
    m.gauge("edgenode_raft_commit_index", "raft commit index", () => this.host.node()?.status().commit ?? 0);
    m.gauge("edgenode_raft_applied_index", "raft applied index", () => this.host.driver()?.applied ?? 0);
    m.gauge("edgenode_raft_is_leader", "1 when this server leads", () => (this.host.driver()?.isLeader ? 1 : 0));
    m.gauge("edgenode_raft_last_contact_ms", "ms since the leader was last heard", () => this.sinceLeaderContact());
  }

  /** Counts a connection or request a limit refused (the listeners log them at a bounded rate). */
  observeRefusal(port: "http" | "rpc", reason: string): void {
    this.host.stats.inc(
      "edgenode_connections_refused_total",
      { port, reason },
      1,
      "connections and requests refused by a connection limit or deadline",
    );
  }

  observeHttp(route: string, method: string, status: number): void {
    this.host.stats.inc("edgenode_http_requests_total", { route, method, status: String(status) }, 1, "HTTP requests by route and status");
  }

  /** ms since a follower last heard its leader; 0 on the leader and before any contact. */
  private sinceLeaderContact(): number {
    const d = this.host.driver();
    return d && !d.isLeader && d.lastContact ? performance.now() - d.lastContact : 0;
  }

  /** Replication lag per peer (leader only), refreshed when metrics are read. */
  private refreshLag(): void {
    const st = this.host.node()?.status();
    if (!st?.progress) return;
    const self = this.host.nodeId();
    for (const [id, p] of Object.entries(st.progress)) {
      if (id === self) continue;
      this.host.stats.set(
        "edgenode_raft_replication_lag_entries",
        Math.max(0, st.lastIndex - p.match),
        { peer: id },
        "entries the peer is behind the leader",
      );
    }
  }
}
