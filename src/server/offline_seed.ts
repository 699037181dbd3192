// A new cluster from a snapshot file, offline: an empty data directory seeded so that the server starts
// as a new one-server cluster holding exactly the file's state. The file's state becomes the raft
// snapshot one index and one term above the file's (as an online restore puts it at its entry's index), so
// every index the new cluster hands out is above any the old one did; the cluster id is new, so servers
// of the old cluster cannot be mistaken for this one; the configuration names this server alone. Others
// join it with empty directories and catch up by InstallSnapshot.
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { EdgeError } from "../lib/errors.ts";
import type { Configuration, SnapshotMeta } from "../raft/storage.ts";
import type { SnapshotHeader } from "../snapshot/format.ts";
import { fileChunks, readSnapshot, verifySnapshotFile } from "../snapshot/reader.ts";
import { rewriteSnapshotHeader } from "../snapshot/rewrite.ts";
import { RestoreError } from "../state/restore.ts";
import { StateStore } from "../state/state_store.ts";
import { LOCK_FILE } from "../storage/dir_lock.ts";
import { writeOfflineNote } from "./offline_note.ts";
import { openRaftStores } from "./raft_start.ts";

export interface SeedResult {
  nodeId: string;
  clusterId: string;
  /** The raft snapshot the server starts from. */
  index: number;
  term: number;
  file: SnapshotHeader;
  counts: Record<string, number>;
}

/** What `dir` holds besides the lock file. */
async function contents(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n !== LOCK_FILE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

/**
 * Reads `file` through as the server would load it (framing, digest, and every record into a state
 * store), so a file that would not start a server is refused before the directory is touched.
 */
async function verifyFully(file: string): Promise<{ header: SnapshotHeader; counts: Record<string, number>; sha256: string }> {
  const v = await verifySnapshotFile(file);
  const reader = readSnapshot(fileChunks(file));
  const header = await reader.header;
  try {
    await StateStore.restore(reader.records, header.index + 1);
  } catch (e) {
    if (e instanceof RestoreError) throw new EdgeError("BAD_SNAPSHOT", `${file}: ${e.message}`);
    throw e;
  }
  if (reader.result?.sha256 !== v.sha256) throw new EdgeError("CORRUPT", `${file} changed while it was being read`);
  return { header, counts: v.counts, sha256: v.sha256 };
}

/**
 * Seeds `dataDir` (which the caller holds locked, see dir_lock.ts) from `file`; `address` is the RPC
 * address this server advertises. Refuses a directory holding anything; on failure removes what it wrote.
 */
export async function seedFromSnapshot(opts: {
  dataDir: string;
  file: string;
  address: string;
  region?: string;
  logAt: (level: string, msg: string) => void;
}): Promise<SeedResult> {
  const { dataDir, file, address } = opts;
  const present = await contents(dataDir);
  if (present.length > 0)
    throw new EdgeError(
      "CONFLICT",
      `data directory ${dataDir} is not empty (${present.slice(0, 5).join(", ")}${present.length > 5 ? ", ..." : ""}): an offline restore seeds only an empty directory; move it aside first`,
    );
  const { header, counts } = await verifyFully(file);
  if (opts.region !== undefined && header.region !== opts.region)
    throw new EdgeError("BAD_SNAPSHOT", `${file} is a snapshot of region "${header.region}", this server is in region "${opts.region}"`);
  const index = header.index + 1;
  const term = header.term + 1;
  const clusterId = crypto.randomUUID();
  try {
    const { stable, wal, snapshots } = await openRaftStores(dataDir, opts.logAt);
    try {
      const nodeId = stable.get().nodeId;
      const config: Configuration = { servers: [{ id: nodeId, address, voter: true }] };
      const meta: SnapshotMeta = { index, term, config };
      const sink = snapshots.create(meta);
      try {
        const chunks = rewriteSnapshotHeader(fileChunks(file), (old) => {
          const { formatVersion: _, ...rest } = old;
          return { ...rest, clusterId, snapshotId: sink.id, index, term, config, created: new Date().toISOString() };
        });
        for await (const c of chunks) await sink.write(c);
        // The stored file is read back whole before it is renamed into place.
        await sink.close(async (path) => {
          await verifySnapshotFile(path);
        });
      } catch (e) {
        await sink.cancel();
        throw e;
      }
      // The log starts after the snapshot; term and commit as a server that installed it would have them.
      await wal.installSnapshot(meta);
      await wal.setHardState({ term, vote: "", commit: index });
      await stable.set({ clusterId });
      writeOfflineNote(dataDir, "snapshot restore -offline", {
        snapshot: header.snapshotId,
        file_index: header.index,
        old_cluster: header.clusterId,
        cluster: clusterId,
        index,
        term,
      });
      return { nodeId, clusterId, index, term, file: header, counts };
    } finally {
      await wal.close();
      stable.close();
    }
  } catch (e) {
    for (const n of await contents(dataDir)) await rm(join(dataDir, n), { recursive: true, force: true });
    throw e;
  }
}
