// `node operator snapshot history`: the saves and restores every server took part in, newest first,
// a restore under way with its phase, and the scheduled snapshot files on each server's disk.
import { type SnapshotHistory, type SnapshotOp, type SnapshotProgress, snapshotHistory } from "../api/snapshot.ts";
import { formatDuration, formatSize } from "../lib/duration.ts";
import { simpleCommand } from "./simple_command.ts";
import { formatTable } from "./table.ts";

function outcome(op: SnapshotOp): string {
  if (op.Outcome === "ok") return op.DryRun ? "ok (dry run)" : "ok";
  return `error: ${op.Error ? `${op.Error.Message} (${op.Error.Code})` : "unknown"}`;
}

/** A phase as a sentence's part: "staged on 3 servers". */
export function phaseText(p: SnapshotProgress): string {
  if (p.Phase === "staged" && p.StagedOn !== undefined) return `staged on ${p.StagedOn} server${p.StagedOn === 1 ? "" : "s"}`;
  return p.Phase;
}

function age(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? "?" : formatDuration(Math.max(0, Math.round((now - t) / 1000)) * 1000);
}

export function formatSnapshotHistory(h: SnapshotHistory, now = Date.now()): string {
  const name = (s: { Node: string; ID: string }) => s.Node || s.ID;
  const ops = h.Servers.flatMap((s) => s.Ops.map((op) => ({ server: name(s), op }))).sort((a, b) => b.op.Start.localeCompare(a.op.Start));
  const out: string[] = [];
  out.push(
    ops.length === 0
      ? "No snapshot saves or restores recorded (each server remembers its last 64 since it started)."
      : formatTable([
          ["Time", "Server", "Op", "Role", "Index", "Size", "Duration", "Outcome"],
          ...ops.map(({ server, op }) => [
            op.Start,
            server,
            op.Kind,
            op.Role,
            String(op.Index),
            formatSize(op.Bytes),
            formatDuration(op.DurationMs),
            outcome(op),
          ]),
        ]),
  );
  for (const s of h.Servers) {
    const p = s.InProgress;
    if (p) out.push(`In progress on ${name(s)} (${p.Role}): ${p.Kind} ${phaseText(p)}, ${formatSize(p.Bytes)} so far, since ${p.Start}`);
  }
  const files = h.Servers.flatMap((s) => s.Scheduled.map((f) => ({ server: name(s), f })));
  if (files.length > 0)
    out.push(
      formatTable([
        ["Server", "Scheduled snapshot", "Index", "Size", "Age"],
        ...files.map(({ server, f }) => [server, f.Name, String(f.Index), formatSize(f.Size), age(f.Modified, now)]),
      ]),
    );
  for (const s of h.Servers) if (s.Error !== undefined) out.push(`${name(s)} (${s.Address}) did not answer: ${s.Error}`);
  return out.join("\n\n");
}

export const snapshotHistoryCommand = simpleCommand({
  path: ["operator", "snapshot", "history"],
  synopsis: "Show the snapshot saves and restores each server took part in, and the scheduled snapshots on disk",
  usage: "[options]",
  doing: "reading the snapshot history",
  args: "none",
  async run(_f, _, client) {
    return formatSnapshotHistory(await snapshotHistory(await client()));
  },
});
