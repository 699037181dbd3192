// Three compiled servers form from three config files, then serve writes, CAS, blocking queries and
// stale reads from any server; leadership transfer works over the HTTP API.
import { describe, expect, test } from "bun:test";
import { waitFor, withLogs, type VarReply, useCluster } from "./harness.ts";

const cluster = useCluster("basic", { leaderMs: false });

describe("three-server cluster", () => {
  test(
    "forms from three config files with one leader and three voters",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        for (const s of cluster.servers) {
          const peers = await s.get<string[]>("/v1/status/peers");
          expect(peers.status).toBe(200);
          expect([...peers.body].sort()).toEqual(cluster.servers.map((x) => x.rpcAddr).sort());
          const health = await s.get<{ server: { ok: boolean } }>("/v1/agent/health");
          expect(health.status).toBe(200);
          expect(health.body.server.ok).toBe(true);
        }
        const conf = await cluster.servers[0]!.get<{ Servers: { Address: string; Leader: boolean; Voter: boolean; Node: string }[] }>(
          "/v1/operator/raft/configuration",
        );
        expect(conf.status).toBe(200);
        expect(conf.body.Servers).toHaveLength(3);
        expect(conf.body.Servers.every((s) => s.Voter)).toBe(true);
        expect(conf.body.Servers.filter((s) => s.Leader).map((s) => s.Address)).toEqual([leader.rpcAddr]);
        expect(conf.body.Servers.map((s) => s.Node).sort()).toEqual(["s1", "s2", "s3"]);
      }),
    30_000,
  );

  test(
    "writes through any server are read back through every server",
    () =>
      withLogs(cluster, async () => {
        await cluster.waitForLeader();
        for (const s of cluster.servers) await s.putVar(`any/${s.name}`, { from: s.name });
        for (const reader of cluster.servers) {
          for (const writer of cluster.servers) {
            const r = await reader.get<VarReply>(`/v1/var/any/${writer.name}`);
            expect(r.status).toBe(200);
            expect(r.body.Items).toEqual({ from: writer.name });
          }
          const list = await reader.get<{ Path: string }[]>("/v1/vars?prefix=any/");
          expect(list.body.map((v) => v.Path)).toEqual(["any/s1", "any/s2", "any/s3"]);
        }
      }),
    30_000,
  );

  test(
    "CAS conflict answers 409 with the current variable",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const created = await f.putVar("cas/k", { v: "1" }, "?cas=0");
        const again = await f.put<VarReply>("/v1/var/cas/k?cas=0", { Items: { v: "2" } });
        expect(again.status).toBe(409);
        expect(again.body.Items).toEqual({ v: "1" });
        expect(again.body.ModifyIndex).toBe(created.ModifyIndex);
        const stale = await leader.put<VarReply>(`/v1/var/cas/k?cas=${created.ModifyIndex + 1000}`, { Items: { v: "3" } });
        expect(stale.status).toBe(409);
        expect(stale.body.ModifyIndex).toBe(created.ModifyIndex);
        const ok = await f.putVar("cas/k", { v: "4" }, `?cas=${created.ModifyIndex}`);
        expect(ok.ModifyIndex).toBeGreaterThan(created.ModifyIndex);
        const del = await f.http("DELETE", `/v1/var/cas/k?cas=${created.ModifyIndex}`);
        expect(del.status).toBe(409);
        const got = await leader.get<VarReply>("/v1/var/cas/k");
        expect(got.body.Items).toEqual({ v: "4" });
      }),
    30_000,
  );

  test(
    "a blocking query on a follower wakes on a write and times out with the same index when nothing changes",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const first = await leader.putVar("block/k", { v: "1" });
        const index = first.ModifyIndex;

        // Nothing changes: the query holds for the wait (plus at most wait/16 jitter) and returns the same index.
        const t0 = performance.now();
        const idle = await f.get<VarReply>(`/v1/var/block/k?index=${index}&wait=1s`);
        const held = performance.now() - t0;
        expect(idle.status).toBe(200);
        expect(Number(idle.headers.get("X-Edgenode-Index"))).toBe(index);
        expect(held).toBeGreaterThanOrEqual(950);
        expect(held).toBeLessThan(5_000);

        // A write wakes it long before its 30 s wait.
        const t1 = performance.now();
        const pending = f.get<VarReply>(`/v1/var/block/k?index=${index}&wait=30s`, 40_000);
        const early = await Promise.race([pending.then(() => "returned"), Bun.sleep(300).then(() => "blocked")]);
        expect(early).toBe("blocked");
        const second = await cluster.servers[2]!.putVar("block/k", { v: "2" });
        const woke = await pending;
        expect(woke.status).toBe(200);
        expect(woke.body.Items).toEqual({ v: "2" });
        expect(Number(woke.headers.get("X-Edgenode-Index"))).toBe(second.ModifyIndex);
        expect(performance.now() - t1).toBeLessThan(10_000);

        // The list endpoint blocks too.
        const listPending = leader.get<{ Path: string }[]>(`/v1/vars?prefix=block/&index=${second.ModifyIndex}&wait=30s`, 40_000);
        const third = await f.putVar("block/other", { v: "3" });
        const list = await listPending;
        expect(Number(list.headers.get("X-Edgenode-Index"))).toBeGreaterThanOrEqual(third.ModifyIndex);
        expect(list.body.map((v) => v.Path)).toEqual(["block/k", "block/other"]);
      }),
    60_000,
  );

  test(
    "?stale on a cut-off follower answers with growing LastContact; a default read there does not succeed",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const w = await leader.putVar("stale/k", { v: "before" });
        const f = cluster.followers(leader)[0]!;
        // The follower has applied the write before it is cut off.
        await waitFor(
          "follower applied the write",
          5_000,
          async () => (await f.get<VarReply>("/v1/var/stale/k?stale")).body.ModifyIndex === w.ModifyIndex,
        );
        const others = cluster.servers.filter((s) => s !== f);
        for (const o of others) o.stop();
        try {
          const r1 = await f.get<VarReply>("/v1/var/stale/k?stale");
          expect(r1.status).toBe(200);
          expect(r1.body.Items).toEqual({ v: "before" });
          const c1 = Number(r1.headers.get("X-Edgenode-LastContact"));
          expect(Number.isFinite(c1)).toBe(true);
          const grown = await waitFor("LastContact to grow by 500 ms", 5_000, async () => {
            const r = await f.get<VarReply>("/v1/var/stale/k?stale");
            const c = Number(r.headers.get("X-Edgenode-LastContact"));
            return r.status === 200 && c >= c1 + 500 ? c : undefined;
          });
          expect(grown).toBeGreaterThanOrEqual(c1 + 500);

          // A default (linearizable) read cannot be answered: 503, or it waits past our deadline.
          let outcome: number | string;
          try {
            outcome = (await f.get("/v1/var/stale/k", 8_000)).status;
          } catch (e) {
            outcome = (e as Error).name;
          }
          expect([503, "TimeoutError", "AbortError"]).toContain(outcome);
          const health = await f.get("/v1/agent/health");
          expect(health.status).toBe(500);
        } finally {
          for (const o of others) o.cont();
        }
        // The cluster heals: a leader again and writes go through the formerly cut-off follower.
        await cluster.waitForLeader(15_000);
        await waitFor(
          "a write through the healed follower",
          15_000,
          async () => (await f.put("/v1/var/stale/k", { Items: { v: "after" } })).status === 200,
        );
        const back = await leader.get<VarReply>("/v1/var/stale/k");
        expect(back.body.Items).toEqual({ v: "after" });
      }),
    60_000,
  );

  test(
    "transfer-leadership moves the leader to the named voter, and to some voter without one",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const conf = await leader.get<{ Servers: { ID: string; Address: string }[] }>("/v1/operator/raft/configuration");
        const target = conf.body.Servers.find((s) => s.Address !== leader.rpcAddr)!;
        // Sent to a follower: it is forwarded to the leader.
        const via = cluster.followers(leader).find((s) => s.rpcAddr !== target.Address)!;
        const r = await via.put(`/v1/operator/raft/transfer-leadership?id=${target.ID}`);
        expect(r.status).toBe(200);
        const next = await cluster.waitForLeader(10_000);
        expect(next.rpcAddr).toBe(target.Address);
        const r2 = await next.put("/v1/operator/raft/transfer-leadership");
        expect(r2.status).toBe(200);
        const third = await cluster.waitForLeader(10_000);
        expect(third.rpcAddr).not.toBe(next.rpcAddr);
        await third.putVar("transfer/ok", { v: "1" });
        const bad = await third.put("/v1/operator/raft/transfer-leadership?id=no-such-server");
        expect(bad.status).toBe(404);
      }),
    60_000,
  );
});
