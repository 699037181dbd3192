// Restore with a follower down and with writes racing it, on three compiled servers: the down follower
// catches up to the restored state when it returns; a write acknowledged with an index above the
// restore's is present afterwards on every server, and one below it is gone with the old state.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";
import {
  expectLeaderServesRestored,
  fingerprint,
  getItems,
  listVars,
  restoreFile,
  startClusterIn,
  writeVarsSnapshot,
} from "./snapshot_cluster.ts";

const cluster = useCluster("snap-lag", { start: (c) => startClusterIn(c) });

async function agree(prefixFilter = (_p: string) => true): Promise<string> {
  return waitFor(
    "every server to hold the same variables",
    60_000,
    async () => {
      const prints = await Promise.all(
        cluster.servers.map(async (s) => fingerprint((await listVars(s)).filter((v) => prefixFilter(v.Path)))),
      );
      return prints.every((p) => p === prints[0]) ? prints[0] : undefined;
    },
    250,
  );
}

describe("restore with a follower down, and with racing writes", () => {
  test(
    "a follower down during the restore catches up to the restored state when it returns",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        for (let i = 0; i < 30; i++) await leader.putVar(`before/k${i}`, { v: String(i) });
        const [down, via] = cluster.followers(leader) as [ClusterServer, ClusterServer];
        await down.kill();
        const file = join(cluster.dir, "lag.snap");
        await writeVarsSnapshot(file, "lag", 5000, 500, 3);
        const r = await restoreFile(via, file);
        expect(r.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "lag" },
          absent: "before/k0",
          index: (r.body as { Index: number }).Index,
        });
        const restoredAt = (r.body as { Index: number }).Index;
        // More writes after the restore, so the returning server must apply both the restore and later entries.
        for (let i = 0; i < 20; i++) await via.putVar(`after/k${i}`, { v: String(i) });
        down.start();
        await down.waitHttp(20_000);
        const print = await agree();
        const list = await listVars(down);
        expect(list.length).toBe(5001 + 20);
        expect(list.some((v) => v.Path.startsWith("before/"))).toBe(false);
        expect(print).toBe(fingerprint(await listVars(leader)));
        expect(await getItems(down, "marker/state")).toEqual({ tag: "lag" });
        expect(await getItems(down, "after/k19")).toEqual({ v: "19" });
        const idx = Number((await down.get("/v1/var/after/k0?stale")).headers.get("X-Edgenode-Index"));
        expect(idx).toBeGreaterThan(restoredAt);
        expect(down.log()).toMatch(/restore: (swapped|fetched)|installed snapshot from leader/);
      }),
    120_000,
  );

  test(
    "a follower frozen (SIGSTOP) during the restore does not hold it up, and catches up once thawed",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const [frozen, via] = cluster.followers(leader) as [ClusterServer, ClusterServer];
        const file = join(cluster.dir, "frozen.snap");
        await writeVarsSnapshot(file, "frozen", 4000, 1000, 8);
        const leaderLogFrom = leader.log().length;
        frozen.stop();
        let r;
        const t0 = performance.now();
        try {
          r = await restoreFile(via, file);
        } finally {
          frozen.cont();
        }
        const ms = performance.now() - t0;
        expect(r.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "frozen" },
          index: (r.body as { Index: number }).Index,
        });
        // Staged on the leader and `via`, a quorum, and proposed at once: the frozen peer (which cannot even
        // accept the stream) was not waited for. Its staging goes on in the background once thawed, or fails.
        expect(ms).toBeLessThan(30_000);
        expect(leader.log().slice(leaderLogFrom)).toMatch(/restore: staged: id=\S+ servers=2 voters=3/);
        await waitFor(
          `${frozen.name} on the restored state`,
          60_000,
          async () => (await getItems(frozen, "marker/state"))?.tag === "frozen",
          250,
        );
        await agree();
        console.log(`restore with a frozen follower answered in ${(ms / 1000).toFixed(1)} s`);
      }),
    150_000,
  );

  test(
    "a follower frozen in the middle of staging does not hold the restore up; thawed, it finishes that staging and swaps the state it built",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const [frozen, via] = cluster.followers(leader) as [ClusterServer, ClusterServer];
        const file = join(cluster.dir, "midfreeze.snap");
        await writeVarsSnapshot(file, "midfreeze", 30_000, 1000, 9);
        const staged = join(frozen.dataDir, "staged");
        // This server may have staged earlier restores in this file: only what it logs from here on counts.
        const logFrom = frozen.log().length;
        const leaderLogFrom = leader.log().length;
        const t0 = performance.now();
        const req = restoreFile(via, file);
        // Freeze it once the leader's staging stream has opened a temp file there (not an upload spool).
        await waitFor(
          `staging to begin on ${frozen.name}`,
          60_000,
          () => readdirSync(staged).some((n) => n.endsWith(".tmp") && !n.startsWith("upload-")) || undefined,
          1,
        );
        frozen.stop();
        let r;
        try {
          r = await req;
        } finally {
          frozen.cont();
        }
        const ms = performance.now() - t0;
        expect(r.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "midfreeze" },
          index: (r.body as { Index: number }).Index,
        });
        // Proposed with the quorum of the leader and `via`, well before any staging deadline: the frozen
        // peer was not waited for.
        expect(ms).toBeLessThan(30_000);
        expect(leader.log().slice(leaderLogFrom)).toMatch(/restore: staged: id=\S+ servers=2 voters=3/);
        await waitFor(
          `${frozen.name} on the restored state`,
          60_000,
          async () => (await getItems(frozen, "marker/state"))?.tag === "midfreeze",
          250,
        );
        await agree();
        await waitFor(
          `${frozen.name} to drop the cut staging`,
          30_000,
          () => readdirSync(staged).filter((n) => n.endsWith(".tmp")).length === 0 || undefined,
          100,
        );
        // The leader kept streaming to it (within the staging deadline): thawed, it finished the staging it
        // was frozen in, and its apply swapped in the state built while receiving, fetching nothing.
        expect(frozen.log().slice(logFrom)).toContain("restore: staged here");
        expect(frozen.log().slice(logFrom)).toMatch(/restore: swapped: index=\d+ prepared=true/);
        expect(frozen.log().slice(logFrom)).not.toContain("restore: fetched staged snapshot");
        console.log(`restore with a follower frozen mid-staging answered in ${(ms / 1000).toFixed(1)} s`);
      }),
    180_000,
  );

  test(
    "writes racing a restore: acknowledged above the restore index are kept, below it are replaced",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const file = join(cluster.dir, "race.snap");
        await writeVarsSnapshot(file, "race", 8000, 1000, 4);
        const acked: { path: string; v: string; index: number }[] = [];
        const failed: string[] = [];
        let stop = false;
        const writers = cluster.servers.map(async (s, w) => {
          for (let n = 0; !stop; n++) {
            const path = `racing/w${w}-${n}`;
            try {
              const r = await s.put<{ ModifyIndex: number }>(`/v1/var/${path}`, { Items: { v: `${w}-${n}` } }, 30_000);
              if (r.status === 200) acked.push({ path, v: `${w}-${n}`, index: r.body.ModifyIndex });
              else failed.push(`${path}: ${r.status}`);
            } catch (e) {
              failed.push(`${path}: ${(e as Error).message}`);
            }
          }
        });
        await waitFor("some writes before the restore", 10_000, () => acked.length >= 30 || undefined);
        const via = cluster.followers(leader)[0]!;
        const r = await restoreFile(via, file);
        expect(r.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "race" },
          absent: acked[0]!.path,
          index: (r.body as { Index: number }).Index,
        });
        const restoredAt = (r.body as { Index: number }).Index;
        const n0 = acked.length;
        await waitFor("some writes after the restore", 20_000, () => acked.filter((a) => a.index > restoredAt).length >= 30 || undefined);
        stop = true;
        await Promise.all(writers);
        await agree();
        const above = acked.filter((a) => a.index > restoredAt);
        const below = acked.filter((a) => a.index < restoredAt);
        expect(acked.some((a) => a.index === restoredAt)).toBe(false);
        expect(below.length).toBeGreaterThan(0);
        expect(above.length).toBeGreaterThanOrEqual(30);
        for (const s of cluster.servers) {
          const paths = new Set((await listVars(s)).map((v) => v.Path));
          const missing = above.filter((a) => !paths.has(a.path));
          if (missing.length > 0)
            throw new Error(
              `${s.name} lost ${missing.length} writes acknowledged above the restore index ${restoredAt}: ${missing
                .slice(0, 5)
                .map((m) => `${m.path}@${m.index}`)
                .join(", ")}`,
            );
          const resurrected = below.filter((a) => paths.has(a.path));
          expect(resurrected.map((a) => a.path)).toEqual([]);
          for (const a of above.slice(0, 10)) expect(await getItems(s, a.path)).toEqual({ v: a.v });
          expect(paths.has("race/k7999")).toBe(true);
        }
        console.log(
          `racing writes: ${n0} acked before the restore answered, ${below.length} below and ${above.length} above index ${restoredAt}, ${failed.length} failed (${failed.slice(0, 3).join("; ")})`,
        );
      }),
    120_000,
  );

  test(
    "a follower down during the restore catches up after the leader is lost; staged files stay until every server applied it",
    () =>
      withLogs(cluster, async () => {
        // A server drops its staged file once its own raft snapshot covers the restore and every server of the
        // configuration has applied it (asked over RPC): acknowledging an entry is not applying it, and a
        // follower holding the restore entry unapplied may need a peer's copy. So while `down` is down, `other`
        // keeps its copy; with the leader lost too, the returning follower reaches the restored state from
        // `other` (its staged file or a snapshot), and once all three have applied it, the files go.
        const leader = await cluster.waitForLeader();
        const [down, other] = cluster.followers(leader) as [ClusterServer, ClusterServer];
        await down.kill();
        const file = join(cluster.dir, "lost.snap");
        await writeVarsSnapshot(file, "lost", 3000, 300, 6);
        const logFrom = other.log().length;
        const leaderFrom = leader.log().length;
        const r = await restoreFile(other, file);
        expect(r.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "lost" },
          index: (r.body as { Index: number }).Index,
        });
        const id = /restore: staged here: id=([0-9a-f-]+)/.exec(other.log().slice(logFrom))?.[1];
        expect(id).toBeDefined();
        const stagedOn = (s: ClusterServer) => existsSync(join(s.dataDir, "staged", `${id}.snap`));
        await waitFor(
          `${other.name}'s snapshot after the restore`,
          60_000,
          () => /snapshot taken/.test(other.log().slice(logFrom)) || undefined,
          100,
        );
        expect(stagedOn(other)).toBe(true);
        // The old leader's raft snapshot covers the restore too, so its restart does not replay the entry.
        await waitFor(
          `${leader.name}'s snapshot after the restore`,
          60_000,
          () => /snapshot taken/.test(leader.log().slice(leaderFrom)) || undefined,
          100,
        );
        expect(stagedOn(leader)).toBe(true);
        await leader.kill();
        down.start();
        await down.waitHttp(20_000);
        await waitFor(
          `${down.name} on the restored state without the old leader`,
          30_000,
          async () => (await getItems(down, "marker/state"))?.tag === "lost",
          250,
        );
        const w = await other
          .putVar("lost/after", { v: "1" })
          .catch(async () => (await cluster.waitForLeader(20_000, [down, other])).putVar("lost/after", { v: "1" }));
        expect(w.ModifyIndex).toBeGreaterThan((r.body as { Index: number }).Index);
        leader.start();
        await leader.waitHttp(20_000);
        await agree();
        // Every server has applied it now: each one's next cleanup (every 30 s) drops its copy, the restarted
        // old leader's too: its raft snapshot covers the restore, so the entry was not replayed, and only the
        // note it left beside the file (`<id>.applied`) says the restore was applied there.
        const noted = (s: ClusterServer) => existsSync(join(s.dataDir, "staged", `${id}.applied`));
        await waitFor(
          `every server to drop its staged file`,
          75_000,
          () => cluster.servers.every((s) => !stagedOn(s) && !noted(s)) || undefined,
          500,
        );
      }),
    240_000,
  );
});
