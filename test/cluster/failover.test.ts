// Failures and membership on real processes: kill -9 of the leader under writes, a follower that
// falls behind compaction and catches up by InstallSnapshot, a fourth server joining and being
// promoted, and remove-peer over the HTTP API.
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ok, waitFor, withLogs, type ClusterServer, type VarReply, useCluster } from "./harness.ts";

// Small thresholds so a few hundred writes compact the log past a stopped follower.
const SNAPSHOT_THRESHOLD = 64;
const TRAILING_LOGS = 16;

const cluster = useCluster("failover", { server: { snapshotThreshold: SNAPSHOT_THRESHOLD, trailingLogs: TRAILING_LOGS } });

/** Writes `vals/<prefix>-<i>` through `via` until stopped; records every acknowledged write. */
function writer(prefix: string, pick: () => ClusterServer | undefined) {
  const acked: string[] = [];
  let stop = false;
  let errors = 0;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const s = pick();
      if (!s) break;
      const path = `vals/${prefix}-${i}`;
      try {
        const r = await s.put(`/v1/var/${path}`, { Items: { i: String(i) } }, 5_000);
        if (r.status === 200) acked.push(path);
        else errors++;
      } catch {
        errors++;
      }
    }
  })();
  return {
    acked,
    get errors() {
      return errors;
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe("failures and membership", () => {
  test(
    "kill -9 of the leader: a new leader among the survivors and every acknowledged write present",
    () =>
      withLogs(cluster, async () => {
        for (let round = 0; round < 2; round++) {
          const leader = await cluster.waitForLeader(15_000);
          const survivors = cluster.followers(leader);
          // Writes go through a surviving follower, so the client keeps going across the failover.
          const w = writer(`kill${round}`, () => survivors[0]);
          await waitFor("20 acknowledged writes before the kill", 10_000, () => w.acked.length >= 20);
          const t0 = performance.now();
          await leader.kill();
          const next = await cluster.waitForLeader(10_000, survivors, 10);
          const failover = performance.now() - t0;
          console.log(`round ${round}: new leader ${next.name} after ${failover.toFixed(0)} ms`);
          const before = w.acked.length;
          await waitFor("writes to continue after the failover", 10_000, () => w.acked.length >= before + 20);
          await w.stop();
          // Every acknowledged write is there, read linearizably through each survivor.
          for (const s of survivors) {
            const list = await s.get<{ Path: string }[]>(`/v1/vars?prefix=vals/kill${round}-`);
            expect(list.status).toBe(200);
            const have = new Set(list.body.map((v) => v.Path));
            const missing = w.acked.filter((p) => !have.has(p));
            expect(missing).toEqual([]);
          }
          // The killed server comes back from its data dir and rejoins as a follower.
          leader.start();
          await leader.waitHttp();
          await cluster.waitForLeader(15_000);
          await waitFor("the restarted server to have every acknowledged write", 15_000, async () => {
            const list = ok(await leader.get<{ Path: string }[]>(`/v1/vars?prefix=vals/kill${round}-&stale`), `list on ${leader.name}`);
            const have = new Set(list.body.map((v) => v.Path));
            return w.acked.every((p) => have.has(p));
          });
        }
      }),
    90_000,
  );

  test(
    "CAS increments through every server across a leader kill: each acknowledged one counted exactly once",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        await leader.putVar("counter/n", { n: "0" });
        let acked = 0;
        let ambiguous = 0;
        let stop = false;
        const worker = async (pick: () => ClusterServer) => {
          while (!stop) {
            const s = pick();
            try {
              const cur = await s.get<VarReply>("/v1/var/counter/n", 5_000);
              if (cur.status !== 200) continue;
              const n = Number(cur.body.Items.n);
              const r = await s.put(`/v1/var/counter/n?cas=${cur.body.ModifyIndex}`, { Items: { n: String(n + 1) } }, 5_000);
              if (r.status === 200) acked++;
              else if (r.status !== 409) ambiguous++;
            } catch {
              // a timed-out PUT may or may not have been applied
              ambiguous++;
            }
          }
        };
        const survivors = cluster.followers(leader);
        const workers = survivors.flatMap((s) => [worker(() => s), worker(() => s)]);
        await waitFor("30 acknowledged increments", 15_000, () => acked >= 30);
        await leader.kill();
        await cluster.waitForLeader(10_000, survivors);
        const before = acked;
        await waitFor("30 more increments after the kill", 15_000, () => acked >= before + 30);
        stop = true;
        await Promise.all(workers);
        leader.start();
        await leader.waitHttp();
        await cluster.waitForLeader(15_000);
        const final = Number((await survivors[0]!.get<VarReply>("/v1/var/counter/n")).body.Items.n);
        expect(final).toBeGreaterThanOrEqual(acked);
        expect(final).toBeLessThanOrEqual(acked + ambiguous);
      }),
    60_000,
  );

  test(
    "a server down past compaction returns and catches up through InstallSnapshot",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const lagger = cluster.followers(leader)[0]!;
        const laggerLast = (await lagger.raftStats()).last_log_index as number;
        await lagger.kill();
        let last: VarReply | undefined;
        for (let i = 0; i < SNAPSHOT_THRESHOLD * 4; i++) last = await leader.putVar(`lag/k${i}`, { i: String(i), pad: "x".repeat(100) });
        // The leader has compacted past everything the lagger has: a snapshot that, less the trailing
        // entries it keeps, lies beyond the lagger's last entry (a snapshot merely newer than the one before
        // the kill was not enough: the lagger's log can run well past that one, and it then caught up by
        // plain appends).
        let nudges = 0;
        await waitFor("a leader snapshot that compacts past the lagger", 10_000, async () => {
          if (((await leader.raftStats()).last_snapshot_index as number) > laggerLast + TRAILING_LOGS + 1) return true;
          await leader.putVar(`nudge/lag${nudges++}`, { v: "1" }); // a snapshot deferred (a busy server spaces them out) is taken on a later apply, never while idle
          return false;
        });
        lagger.start();
        await lagger.waitHttp();
        await waitFor("the lagger to catch up", 20_000, async () => {
          const r = await lagger.get<VarReply>(`/v1/var/lag/k${SNAPSHOT_THRESHOLD * 4 - 1}?stale`);
          return r.status === 200 && r.body.ModifyIndex === last!.ModifyIndex;
        });
        expect(lagger.tail(200)).toContain("installed snapshot from leader");
        const list = await lagger.get<{ Path: string }[]>("/v1/vars?prefix=lag/&stale");
        expect(list.body).toHaveLength(SNAPSHOT_THRESHOLD * 4);
        const stats = await lagger.raftStats();
        expect(stats.last_snapshot_index as number).toBeGreaterThan(laggerLast);
        const sent = (await leader.get("/v1/metrics?format=prometheus")).text;
        expect(sent).toMatch(/edgenode_raft_snapshots_sent_total\{outcome="ok"\} [1-9]/);
      }),
    60_000,
  );

  test(
    "a server stopped after storing a leader's snapshot, before its log recorded the install, comes back from that snapshot",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const lagger = cluster.followers(leader)[0]!;
        const laggerLast = (await lagger.raftStats()).last_log_index as number;
        await lagger.kill();
        let last: VarReply | undefined;
        for (let i = 0; i < SNAPSHOT_THRESHOLD * 4; i++) last = await leader.putVar(`cut/k${i}`, { i: String(i) });
        let nudges = 0;
        const newest = await waitFor("a leader snapshot past the lagger's last entry", 10_000, async () => {
          const dir = join(leader.dataDir, "snapshots");
          const metas = readdirSync(dir)
            .filter((d) => existsSync(join(dir, d, "meta.json")))
            .map((d) => ({ d, index: (JSON.parse(readFileSync(join(dir, d, "meta.json"), "utf8")) as { index: number }).index }))
            .sort((a, b) => b.index - a.index);
          if (metas[0] && metas[0].index > laggerLast + 1) return { path: join(dir, metas[0].d), name: metas[0].d, index: metas[0].index };
          await leader.putVar(`nudge/cut${nudges++}`, { v: "1" }); // see the test above
          return undefined;
        });
        // What InstallSnapshot leaves on disk when the server stops between storing the leader's file and
        // resetting its log: the file in the snapshot store, a log that ends before it.
        cpSync(newest.path, join(lagger.dataDir, "snapshots", newest.name), { recursive: true });
        lagger.start();
        await lagger.waitHttp();
        expect(lagger.tail(200)).toContain("finishing the install of a snapshot from the leader");
        await waitFor("the lagger to catch up", 20_000, async () => {
          const r = await lagger.get<VarReply>(`/v1/var/cut/k${SNAPSHOT_THRESHOLD * 4 - 1}?stale`);
          return r.status === 200 && r.body.ModifyIndex === last!.ModifyIndex;
        });
        const list = await lagger.get<{ Path: string }[]>("/v1/vars?prefix=cut/&stale");
        expect(list.body).toHaveLength(SNAPSHOT_THRESHOLD * 4);
        expect((await lagger.raftStats()).last_snapshot_index as number).toBeGreaterThanOrEqual(newest.index);
      }),
    60_000,
  );

  test(
    "a fourth server pointed at the cluster joins and is promoted to voter; remove-peer over the HTTP API takes it out again",
    () =>
      withLogs(cluster, async () => {
        const first = await cluster.waitForLeader(15_000);
        const before = await first.putVar("joined/before-fourth", { v: "1" });
        const fourth = cluster.add({ bootstrapExpect: 0, snapshotThreshold: SNAPSHOT_THRESHOLD, trailingLogs: TRAILING_LOGS });
        fourth.start();
        await fourth.waitHttp();
        const conf = await waitFor("the fourth server to be a voter", 20_000, async () => {
          const r = ok(
            await cluster.servers[0]!.get<{ Servers: { ID: string; Address: string; Voter: boolean }[] }>(
              "/v1/operator/raft/configuration",
            ),
            "raft configuration",
          );
          const me = r.body.Servers.find((s) => s.Address === fourth.rpcAddr);
          return me?.Voter ? r.body : undefined;
        });
        expect(conf.Servers).toHaveLength(4);
        // It has the data and serves writes.
        await waitFor(
          "the fourth server to have the data",
          10_000,
          async () => (await fourth.get<VarReply>("/v1/var/joined/before-fourth?stale")).body.ModifyIndex === before.ModifyIndex,
        );
        await fourth.putVar("joined/by-fourth", { v: "1" });
        // /v1/status/peers answers from the server's own applied configuration: it learns its promotion
        // when it applies that entry, a moment after the leader.
        const peers = await waitFor("the fourth server to see itself as a voter", 10_000, async () => {
          const r = ok(await fourth.get<string[]>("/v1/status/peers"), "peers");
          return r.body.includes(fourth.rpcAddr) ? r.body : undefined;
        });
        expect(peers).toHaveLength(4);

        // Remove it again (or, should it have become the leader, a follower), through another follower.
        const leader = await cluster.waitForLeader(15_000);
        const victim = fourth !== leader ? fourth : cluster.followers(leader)[0]!;
        const id = ok(
          await leader.get<{ Servers: { ID: string; Address: string }[] }>("/v1/operator/raft/configuration"),
          "raft configuration",
        ).body.Servers.find((s) => s.Address === victim.rpcAddr)!.ID;
        const via = cluster.followers(leader).find((s) => s !== victim)!;
        const r = await via.http("DELETE", `/v1/operator/raft/peer?id=${id}`);
        expect(r.status).toBe(200);
        const after = await leader.get<{ Servers: { Address: string }[] }>("/v1/operator/raft/configuration");
        expect(after.body.Servers.map((s) => s.Address)).not.toContain(victim.rpcAddr);
        const peersAfter = await leader.get<string[]>("/v1/status/peers");
        expect(peersAfter.body).not.toContain(victim.rpcAddr);
        await victim.kill();
        // The remaining three still commit writes; an unknown peer is a 404.
        await via.putVar("removed/ok", { v: "1" });
        const gone = await via.http("DELETE", `/v1/operator/raft/peer?id=${id}`);
        expect(gone.status).toBe(404);
      }),
    90_000,
  );

  test(
    "every server killed -9 at once comes back from its data with every acknowledged write",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const members = cluster.running();
        const w = writer("all", () => leader);
        await waitFor("30 acknowledged writes", 10_000, () => w.acked.length >= 30);
        await Promise.all(members.map((s) => s.kill()));
        await w.stop();
        for (const s of members) s.start();
        await Promise.all(members.map((s) => s.waitHttp()));
        const next = await cluster.waitForLeader(15_000, members);
        const list = await next.get<{ Path: string }[]>("/v1/vars?prefix=vals/all-");
        expect(list.status).toBe(200);
        const have = new Set(list.body.map((v) => v.Path));
        expect(w.acked.filter((p) => !have.has(p))).toEqual([]);
        await next.putVar("after/restart", { v: "1" });
      }),
    60_000,
  );
});
