/** @jsxImportSource hono/jsx */
// The Snapshots page: the last saves and restores across the cluster (each server's own record, merged
// newest first), a restore under way with its phase and bytes so far, and the scheduled snapshot files on
// each server's disk. Data from GET /v1/operator/snapshot/history's own call.
import type { OpProgress, SnapshotHistoryReply } from "../../server/snapshot_history.ts";
import { formatSize } from "../../lib/duration.ts";
import { ColumnHeads } from "./column_heads.tsx";
import { Banner, Layout } from "./layout.tsx";

type Server = SnapshotHistoryReply["Servers"][number];

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function formatAge(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (Number.isNaN(s)) return "?";
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

function phaseText(p: OpProgress): string {
  if (p.Phase === "staged" && p.StagedOn !== undefined) return `staged on ${p.StagedOn} server${p.StagedOn === 1 ? "" : "s"}`;
  return p.Phase;
}

const num = (label: string) => ({ label, num: true });

const nameOf = (s: Server) => s.Node || s.ID;

/**
 * The restore shown as in progress: the leader's (it knows the furthest phase), else the relaying server's.
 * One element carries the test hooks, so a cluster shows one restore at a time (the leader runs one).
 */
function currentRestore(servers: readonly Server[]): { server: Server; p: OpProgress } | undefined {
  const under = servers.flatMap((server) => (server.InProgress?.Kind === "restore" ? [{ server, p: server.InProgress }] : []));
  return under.find((u) => u.p.Role === "leader") ?? under[0];
}

export function SnapshotsPage(props: { data: SnapshotHistoryReply; signedIn: boolean; now?: number }) {
  const servers = props.data.Servers;
  const now = props.now ?? Date.now();
  const ops = servers.flatMap((s) => s.Ops.map((op) => ({ server: nameOf(s), op }))).sort((a, b) => b.op.Start.localeCompare(a.op.Start));
  const files = servers.flatMap((s) => s.Scheduled.map((f) => ({ server: nameOf(s), f })));
  const missing = servers.filter((s) => s.Error !== undefined);
  const current = currentRestore(servers);
  const lastFailed = ops[0]?.op.Outcome === "error";
  return (
    <Layout title="Snapshots" refresh={true} signedIn={props.signedIn}>
      <Banner bad={missing.length > 0 || lastFailed}>
        {missing.length > 0
          ? `No answer from ${missing.map((s) => `${nameOf(s)} (${s.Error})`).join(", ")}`
          : lastFailed
            ? "The last snapshot operation failed."
            : current
              ? "A restore is in progress."
              : ops.length === 0
                ? "No snapshot save or restore recorded yet."
                : "The last snapshot operation succeeded."}
      </Banner>
      <h2>Restore in progress</h2>
      {current ? (
        <p id="restore-progress" data-phase={current.p.Phase} data-server={nameOf(current.server)}>
          {`${current.p.DryRun ? "Dry-run restore" : "Restore"} on ${nameOf(current.server)} (${current.p.Role}): `}
          <strong>{phaseText(current.p)}</strong>
          {`, ${formatSize(current.p.Bytes)} so far, since ${current.p.Start}`}
        </p>
      ) : (
        <p class="muted">None.</p>
      )}
      <h2>Last saves and restores</h2>
      {ops.length === 0 ? (
        <p class="muted">None recorded (each server remembers its last 64 since it started).</p>
      ) : (
        <table>
          <ColumnHeads cols={["Time", "Server", "Operation", "Role", num("Index"), num("Size"), num("Duration"), "Outcome"]} />
          <tbody>
            {ops.map(({ server, op }) => (
              <tr data-op={op.Kind} data-outcome={op.Outcome} data-server={server}>
                <td>{op.Start}</td>
                <td>{server}</td>
                <td>{op.DryRun ? `${op.Kind} (dry run)` : op.Kind}</td>
                <td>{op.Role}</td>
                <td class="num">{String(op.Index)}</td>
                <td class="num">{formatSize(op.Bytes)}</td>
                <td class="num">{formatMs(op.DurationMs)}</td>
                <td class={op.Outcome === "ok" ? "ok" : "bad"}>
                  {op.Outcome === "ok" ? "ok" : `error: ${op.Error ? `${op.Error.Message} (${op.Error.Code})` : "unknown"}`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Scheduled snapshots on disk</h2>
      {files.length === 0 ? (
        <p class="muted">None (the schedule is off, or has not written one yet).</p>
      ) : (
        <table>
          <ColumnHeads cols={["Server", "Name", num("Index"), num("Size"), num("Age")]} />
          <tbody>
            {files.map(({ server, f }) => (
              <tr data-scheduled={f.Name} data-server={server}>
                <td>{server}</td>
                <td>
                  <code>{f.Name}</code>
                </td>
                <td class="num">{String(f.Index)}</td>
                <td class="num">{formatSize(f.Size)}</td>
                <td class="num">{formatAge(f.Modified, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="muted">Each server keeps its own record in memory. This page reloads itself every few seconds.</p>
    </Layout>
  );
}
