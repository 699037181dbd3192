/** @jsxImportSource hono/jsx */
// The Cluster page: the cluster id, who leads, each server's role, version, health, commit and applied
// index and lag, and the failure tolerance; red when there is no leader, a server is unhealthy, or a
// server trails the leader's commit by more than autopilot's max_trailing_logs or did not answer.
// Data from the public API's own calls.
import type { AutopilotHealth, RaftConfiguration } from "../../server/operator_endpoints.ts";
import type { RaftStats, ServerRaftStats } from "../../server/raft_stats.ts";
import { ColumnHeads } from "./column_heads.tsx";
import { Banner, Layout } from "./layout.tsx";

export interface ClusterData {
  region: string;
  config: RaftConfiguration;
  /** Undefined when autopilot health could not be read (no leader); `healthError` says why. */
  health?: AutopilotHealth;
  healthError?: string;
  /** Undefined when the raft stats could not be read; `statsError` says why. */
  stats?: RaftStats;
  statsError?: string;
  /** Autopilot's max_trailing_logs in effect; undefined when it could not be read. */
  maxTrailingLogs?: number;
}

/** Why a server is shown behind: it did not answer, or its lag is over max_trailing_logs; undefined when it is not. */
function behindWhy(s: ServerRaftStats, maxTrailingLogs: number | undefined): string | undefined {
  if (s.Error !== undefined) return s.Error;
  if (s.Lag !== undefined && maxTrailingLogs !== undefined && s.Lag > maxTrailingLogs)
    return `${s.Lag} entries behind, over max_trailing_logs ${maxTrailingLogs}`;
  return undefined;
}

function StatsCells(props: { s: ServerRaftStats | undefined; why: string | undefined }) {
  const { s, why } = props;
  if (s?.Error !== undefined)
    return (
      <td colspan={3} class="bad">
        {`no answer: ${s.Error}`}
      </td>
    );
  const n = (v: number | undefined) => (v === undefined ? "–" : String(v));
  return (
    <>
      <td class="num">{n(s?.CommitIndex)}</td>
      <td class="num">{n(s?.AppliedIndex)}</td>
      <td class={why ? "num bad" : "num"} title={why}>
        {n(s?.Lag)}
      </td>
    </>
  );
}

export function ClusterPage(props: { data: ClusterData; signedIn: boolean }) {
  const { config, health, region, stats, maxTrailingLogs } = props.data;
  const leader = config.Servers.find((s) => s.Leader);
  const byId = new Map((health?.Servers ?? []).map((s) => [s.ID, s]));
  const statsById = new Map((stats?.Servers ?? []).map((s) => [s.ID, s]));
  const unhealthy = (health?.Servers ?? []).filter((s) => !s.Healthy).map((s) => s.Name || s.ID);
  const behind = (stats?.Servers ?? []).flatMap((s) => {
    const why = behindWhy(s, maxTrailingLogs);
    return why ? [`${s.Node || s.ID} (${why})`] : [];
  });
  const problems = [
    ...(health ? [] : [`Health unknown: ${props.data.healthError ?? "no answer"}`]),
    ...(unhealthy.length > 0 ? [`Unhealthy: ${unhealthy.join(", ")}`] : []),
    ...(stats ? [] : [`Raft stats unknown: ${props.data.statsError ?? "no answer"}`]),
    ...(behind.length > 0 ? [`Behind: ${behind.join(", ")}`] : []),
  ];
  const bad = !leader || !health || !health.Healthy || problems.length > 0;
  return (
    <Layout title="Cluster" refresh={true} signedIn={props.signedIn}>
      <Banner bad={bad}>{!leader ? "No leader: the cluster cannot accept writes." : problems.length > 0 ? problems.join("; ") : "Healthy"}</Banner>
      <dl>
        <dt>Region</dt>
        <dd>{region}</dd>
        <dt>Cluster ID</dt>
        <dd id="cluster-id">{stats?.ClusterID ? <code>{stats.ClusterID}</code> : "unknown"}</dd>
        <dt>Leader</dt>
        <dd id="leader" class={leader ? "" : "bad"}>
          {leader ? `${leader.Node} (${leader.Address})` : "none"}
        </dd>
        <dt>Cluster version</dt>
        <dd>{config.ClusterVersion || "unknown"}</dd>
        <dt>Failure tolerance</dt>
        <dd>{health ? String(health.FailureTolerance) : "unknown"}</dd>
      </dl>
      <h2>Servers</h2>
      <table>
        <ColumnHeads
          cols={[
            "Name",
            "ID",
            "Address",
            "Role",
            "Voter",
            "Version",
            "Health",
            "Last contact",
            { label: "Last index", num: true },
            { label: "Commit index", num: true },
            { label: "Applied index", num: true },
            { label: "Lag", num: true, title: "the leader's commit index minus the server's applied index" },
          ]}
        />
        <tbody>
          {config.Servers.map((s) => {
            const h = byId.get(s.ID);
            const st = statsById.get(s.ID);
            const why = st ? behindWhy(st, maxTrailingLogs) : undefined;
            return (
              <tr data-server={s.Node} class={why ? "bad" : undefined}>
                <td>{s.Node}</td>
                <td>
                  <code>{s.ID}</code>
                </td>
                <td>{s.Address}</td>
                <td>{s.Leader ? "leader" : "follower"}</td>
                <td>{s.Voter ? "yes" : "no"}</td>
                <td>{s.Version || "unknown"}</td>
                <td class={h ? (h.Healthy ? "ok" : "bad") : "muted"}>{h ? (h.Healthy ? "healthy" : "unhealthy") : "unknown"}</td>
                <td>{h ? h.LastContact : "–"}</td>
                <td class="num">{h ? String(h.LastIndex) : "–"}</td>
                <StatsCells s={st} why={why} />
              </tr>
            );
          })}
        </tbody>
      </table>
      <p class="muted">Raft configuration index {String(config.Index)}. This page reloads itself every few seconds.</p>
    </Layout>
  );
}
