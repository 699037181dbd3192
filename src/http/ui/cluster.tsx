/** @jsxImportSource hono/jsx */
// The Cluster page: who leads, each server's role, version and health, and the failure tolerance;
// red when there is no leader or a server is unhealthy. Data from the public API's own calls.
import type { AutopilotHealth, RaftConfiguration } from "../../server/operator_endpoints.ts";
import { Banner, Layout } from "./layout.tsx";

export interface ClusterData {
  region: string;
  config: RaftConfiguration;
  /** Undefined when autopilot health could not be read (no leader); `healthError` says why. */
  health?: AutopilotHealth;
  healthError?: string;
}

export function ClusterPage(props: { data: ClusterData; signedIn: boolean }) {
  const { config, health, region } = props.data;
  const leader = config.Servers.find((s) => s.Leader);
  const byId = new Map((health?.Servers ?? []).map((s) => [s.ID, s]));
  const leaderIndex = health?.Servers.find((s) => s.Leader)?.LastIndex;
  const unhealthy = (health?.Servers ?? []).filter((s) => !s.Healthy).map((s) => s.Name || s.ID);
  const bad = !leader || !health || !health.Healthy;
  return (
    <Layout title="Cluster" refresh={true} signedIn={props.signedIn}>
      <Banner bad={bad}>
        {!leader
          ? "No leader: the cluster cannot accept writes."
          : !health
            ? `Health unknown: ${props.data.healthError ?? "no answer"}`
            : unhealthy.length > 0
              ? `Unhealthy: ${unhealthy.join(", ")}`
              : "Healthy"}
      </Banner>
      <dl>
        <dt>Region</dt>
        <dd>{region}</dd>
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
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">ID</th>
            <th scope="col">Address</th>
            <th scope="col">Role</th>
            <th scope="col">Voter</th>
            <th scope="col">Version</th>
            <th scope="col">Health</th>
            <th scope="col">Last contact</th>
            <th scope="col" class="num">
              Last index
            </th>
            <th scope="col" class="num">
              Lag
            </th>
          </tr>
        </thead>
        <tbody>
          {config.Servers.map((s) => {
            const h = byId.get(s.ID);
            const lag = h && leaderIndex !== undefined ? Math.max(0, leaderIndex - h.LastIndex) : undefined;
            return (
              <tr data-server={s.Node}>
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
                <td class="num">{lag === undefined ? "–" : String(lag)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p class="muted">Raft configuration index {String(config.Index)}. This page reloads itself every few seconds.</p>
    </Layout>
  );
}
