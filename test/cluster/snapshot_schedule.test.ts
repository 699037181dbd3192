// Scheduled snapshots on three compiled servers (interval 1s, retain 2, a backup dir per server): files
// appear on the leader only, named with UTC time and index, valid snapshot files, the newest 2 kept;
// after the leader is killed the new leader writes them, and the old one, back as a follower, does not.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { verifySnapshotFile } from "../../src/snapshot/reader.ts";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";
import { startClusterIn } from "./snapshot_cluster.ts";

const NAME = /^edgenode-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-(\d+)\.snap$/;

const backupDir = (s: ClusterServer) => join(s.dataDir, "..", "backups");

const cluster = useCluster("snap-sched", {
  start: (c) =>
    startClusterIn(c, {
      extraHcl: (_name, dataDir) => `snapshot_schedule {
  enabled  = true
  interval = "1s"
  retain   = 2
  path     = "${join(dataDir, "..", "backups")}"
}
`,
    }),
});

/** Backup files in a server's dir (complete ones only: temp files start with a dot). */
function backups(s: ClusterServer): { name: string; index: number; time: number }[] {
  const d = backupDir(s);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((n) => !n.startsWith("."))
    .map((name) => {
      const m = NAME.exec(name);
      if (!m) throw new Error(`unexpected file ${name} in ${d}`);
      const [, y, mo, da, h, mi, se, idx] = m.map(Number) as number[];
      return { name, index: idx!, time: Date.UTC(y!, mo! - 1, da!, h!, mi!, se!) };
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Waits for `s`'s dir to hold exactly 2 backups, the newest of all seen (and of `seen`); returns them. */
async function prunedToNewest2(s: ClusterServer, seen: Set<string>): Promise<{ name: string; index: number; time: number }[]> {
  return waitFor(
    `${s.name}'s backups pruned to the newest 2`,
    5_000,
    () => {
      const bs = backups(s);
      expect(bs.length).toBeLessThanOrEqual(3);
      for (const b of bs) seen.add(b.name);
      if (bs.length !== 2) return undefined;
      expect(bs.map((b) => b.name)).toEqual([...seen].sort().slice(-2));
      return bs;
    },
    20,
  );
}

describe("scheduled snapshots", () => {
  test(
    "the leader alone writes them, named with time and index, newest 2 kept; a new leader takes over",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const followers = cluster.followers(leader);
        const w = await leader.putVar("sched/k", { v: "1" });
        // A backup that covers the write, and then a third one written so that pruning had to happen.
        await waitFor("a backup covering the write", 15_000, () => backups(leader).some((b) => b.index >= w.ModifyIndex) || undefined, 100);
        // A run renames its file in and then prunes, so between the two a third file is there for a moment:
        // more than retain + 1 is never right, and once the run is over exactly the newest 2 are left.
        const seen = new Set<string>();
        await waitFor(
          "three distinct backups seen",
          15_000,
          () => {
            const bs = backups(leader);
            expect(bs.length).toBeLessThanOrEqual(3);
            for (const b of bs) seen.add(b.name);
            return seen.size >= 3 || undefined;
          },
          100,
        );
        const bs = await prunedToNewest2(leader, seen);
        const now = Date.now();
        for (const b of bs) {
          expect(Math.abs(now - b.time)).toBeLessThan(60_000);
          const v = await verifySnapshotFile(join(backupDir(leader), b.name));
          expect(v.header.index).toBe(b.index);
          expect(v.counts.vars).toBe(1);
        }
        for (const f of followers) expect(backups(f)).toEqual([]);

        // Kill the leader: the new leader starts writing, the old one (restarted, a follower) writes none.
        await leader.kill();
        const next = await cluster.waitForLeader(20_000);
        const w2 = await next.putVar("sched/k2", { v: "2" });
        await waitFor(
          "the new leader's backup covering a write",
          15_000,
          () => backups(next).some((b) => b.index >= w2.ModifyIndex) || undefined,
          100,
        );
        expect(next.log()).toMatch(/snapshot schedule started/);
        leader.start();
        await leader.waitHttp(20_000);
        await waitFor("the old leader to follow", 20_000, async () => (await cluster.waitForLeader(20_000)) === next || undefined);
        const oldNames = backups(leader).map((b) => b.name);
        const w3 = await next.putVar("sched/k3", { v: "3" });
        await waitFor(
          "the new leader's backup after the restart",
          15_000,
          () => backups(next).some((b) => b.index >= w3.ModifyIndex) || undefined,
          100,
        );
        expect(backups(leader).map((b) => b.name)).toEqual(oldNames);
        for (const f of cluster.servers.filter((s) => s !== next && s !== leader)) expect(backups(f)).toEqual([]);
        await prunedToNewest2(next, new Set());
      }),
    90_000,
  );
});
