// A restore that cannot be staged on a quorum of voters, on five compiled servers: three followers
// cannot stage (their staging directory is made unusable), so only the leader and one follower hold
// the file, two of five. The restore is refused with 503 and nothing changes; the restore was never
// proposed, so the leader tells its peers to drop it, and the follower that did stage it keeps neither
// the file nor the state it built from it. Once the followers can stage again, a restore succeeds.
import { describe, expect, test } from "bun:test";
import { readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";
import { expectLeaderServesRestored, getItems, restoreFile, startClusterIn, writeVarsSnapshot } from "./snapshot_cluster.ts";

const cluster = useCluster("snap-quorum", { start: (c) => startClusterIn(c, { n: 5 }), timeoutMs: 90_000 });

const stagedDir = (s: ClusterServer) => join(s.dataDir, "staged");
const stagedFiles = (s: ClusterServer) => readdirSync(stagedDir(s)).filter((n) => n.endsWith(".snap"));

/** Put a regular file where the staging directory was: every staging on `s` then fails (ENOTDIR). */
function breakStaging(s: ClusterServer): void {
  renameSync(stagedDir(s), `${stagedDir(s)}.off`);
  writeFileSync(stagedDir(s), "not a directory");
}

function repairStaging(s: ClusterServer): void {
  rmSync(stagedDir(s), { force: true });
  renameSync(`${stagedDir(s)}.off`, stagedDir(s));
}

describe("a restore staged on fewer than a quorum of voters", () => {
  test(
    "is refused with 503, changes nothing, and leaves nothing staged or built on the peer that staged it",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        await leader.putVar("before/k", { v: "kept" });
        const [good, ...bad] = cluster.followers(leader) as [ClusterServer, ...ClusterServer[]];
        expect(bad.length).toBe(3);
        const file = join(cluster.dir, "quorum.snap");
        await writeVarsSnapshot(file, "quorum", 2000, 200, 4);
        for (const s of bad) breakStaging(s);
        const goodFrom = good.log().length;
        let r;
        try {
          r = await restoreFile(leader, file);
        } finally {
          for (const s of bad) repairStaging(s);
        }
        expect(r.status).toBe(503);
        expect(JSON.stringify(r.body)).toContain("staged on 2 of 5 voters, a quorum needs 3; nothing was changed");
        // The follower that staged it was told to drop it, file and built state.
        await waitFor(
          `${good.name} to drop what it staged`,
          30_000,
          () => /restore: dropped a restore the leader gave up on/.test(good.log().slice(goodFrom)) || undefined,
          100,
        );
        expect(good.log().slice(goodFrom)).toMatch(/restore: staged here/);
        for (const s of cluster.servers) expect(stagedFiles(s)).toEqual([]);
        for (const s of cluster.servers) {
          expect(await waitFor(`${s.name} to serve before/k`, 10_000, () => getItems(s, "before/k"), 100)).toEqual({ v: "kept" });
          expect(await getItems(s, "marker/state")).toBeUndefined();
        }
        // Nothing is left holding the restore slot: with staging possible again, the same file restores.
        const ok = await restoreFile(good, file);
        expect(ok.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "quorum" },
          absent: "before/k",
          index: (ok.body as { Index: number }).Index,
        });
        for (const s of cluster.servers)
          await waitFor(`${s.name} on the restored state`, 30_000, async () => (await getItems(s, "marker/state"))?.tag === "quorum", 100);
        expect(await getItems(leader, "before/k")).toBeUndefined();
      }),
    120_000,
  );
});
