// `node operator snapshot restore -offline`: seed an empty data directory from a snapshot file, so that
// the server starts as a new one-server cluster (src/server/offline_seed.ts). Run with the server stopped.
import { stat } from "node:fs/promises";
import { seedFromSnapshot } from "../server/offline_seed.ts";
import { CliError, type Io, str } from "./command.ts";
import type { ParsedFlags } from "./flags.ts";
import { lockForCommand, offlineTarget } from "./offline_target.ts";
import { formatKv } from "./table.ts";

const DOING = "restoring the snapshot offline";

export async function runOfflineRestore(f: ParsedFlags, io: Io, file: string): Promise<number> {
  const { dataDir, cfg } = await offlineTarget(f, DOING);
  const address = str(f, "advertise") || cfg?.advertise.rpc || "";
  if (!address) throw new CliError(`Error ${DOING}: give -config PATH of the server, or -advertise HOST:PORT (its RPC address)`);
  try {
    if (!(await stat(file)).isFile()) throw new CliError(`Error ${DOING}: ${file} is not a regular file`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`Error ${DOING}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lock = lockForCommand(dataDir, "snapshot restore -offline", DOING);
  try {
    const r = await seedFromSnapshot({
      dataDir,
      file,
      address,
      ...(cfg ? { region: cfg.region } : {}),
      logAt: (level, msg) => {
        if (level === "warn" || level === "error") io.err(msg);
      },
    });
    const records = Object.values(r.counts).reduce((a, b) => a + b, 0);
    io.out(
      `${formatKv([
        ["Data directory", dataDir],
        ["Snapshot", `${r.file.snapshotId} (index ${r.file.index}, term ${r.file.term}, ${records} records)`],
        ["Old cluster ID", r.file.clusterId || "-"],
        ["New cluster ID", r.clusterId],
        ["Server ID", r.nodeId],
        ["Address", address],
        ["Starts at", `index ${r.index}, term ${r.term}`],
      ])}\nSeeded a new one-server cluster. Start the agent on this directory; other servers join it with empty data directories.`,
    );
    return 0;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`Error ${DOING}: ${(e as Error).message}`);
  } finally {
    lock.release();
  }
}
