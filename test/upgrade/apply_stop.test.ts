// An older server meeting an entry it does not understand stops applying at it and keeps everything
// else. The "newer" release is this binary with the test-only features compiled in
// (test_features_binary.ts); the "older" one is the release build, which has no test_gated op. Both
// are release 0.2.0, so the feature gate (test-gated: since 0.2.0) lets the leader write the entry with
// the older server in the configuration: it stands for any entry an older server meets despite the gate
// (a gate that was wrong, a feature written without one). The older server must stop applying at that
// index, keep the quorum (writes commit with it as the only other voter up), be reported unhealthy with
// the index and what it needs, never become leader (not on an election, not on a transfer), refuse a
// blocking read past its state and serve stale reads saying how far behind they are; restarted on the
// newer binary it applies on from that index, and every server ends with the same state hash.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Cluster, type ClusterServer, freePort, ok, waitFor, withLogs } from "../cluster/harness.ts";
import { testFeaturesBinary } from "./test_features_binary.ts";

const cluster = new Cluster("apply-stop");
const CURRENT = (await Bun.file(new URL("../../package.json", import.meta.url)).json()).version as string;
let newer = "";
let old: ClusterServer;

interface Self {
  ID: string;
  ClusterVersion?: string;
  ApplyStopped?: { Index: number; Op: string; Feature?: string; Needs: string; Behind: number };
  Stats: { raft: { state: string; applied_index: number; commit_index: number } };
}
interface Health {
  server: { ok: boolean; message: string };
}
interface Hash {
  Index: number;
  Hash: string;
}

const self = async (s: ClusterServer) => ok(await s.get<Self>("/v1/agent/self"), `self of ${s.name}`).body;

beforeAll(async () => {
  await cluster.init();
  newer = await testFeaturesBinary(cluster.dir);
  const ports = Array.from({ length: 3 }, () => ({ http: freePort(), rpc: freePort() }));
  const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
  for (const p of ports) cluster.add({ bootstrapExpect: 3, ports: p, join: all });
  for (const s of cluster.servers) s.binary = newer;
  old = cluster.servers[2] as ClusterServer;
  old.binary = cluster.binaryPath;
  for (const s of cluster.servers) s.start();
  await Promise.all(cluster.servers.map((s) => s.waitHttp()));
}, 300_000);

afterAll(async () => {
  await cluster.cleanup();
});

describe("an entry the older server does not understand", () => {
  test(
    "stops its apply at that index, not its agreement; reported, never leader, stale reads say how far behind; upgraded, it converges",
    () =>
      withLogs(cluster, async () => {
        let leader = await cluster.waitForLeader(20_000);
        const oldId = (await self(old)).ID;
        if (leader === old) {
          const id = (await self(cluster.servers[0] as ClusterServer)).ID;
          ok(await leader.put(`/v1/operator/raft/transfer-leadership?id=${id}`), "transfer");
          leader = await cluster.waitForLeader(20_000, cluster.servers.slice(0, 2));
        }
        await waitFor(`cluster version ${CURRENT} on the leader`, 30_000, async () => (await self(leader)).ClusterVersion === CURRENT);
        await leader.putVar("stop/before", { v: "1" });
        const gated = ok(await leader.put<{ Index: number }>("/v1/operator/test-gated?value=x"), "the gated write").body;
        const at = gated.Index;
        const stoppedAt = Date.now();

        // Stopped at that index: unhealthy naming it and the feature, applied just below it.
        const health = await waitFor("the older server to report its stop", 20_000, async () => {
          const r = await old.get<Health>("/v1/agent/health");
          return r.status === 500 && r.body.server.message.includes(`index ${at}`) ? r.body : undefined;
        });
        expect(health.server.message).toContain(`needs ${CURRENT} built with feature test-gated`);
        const stopped = await self(old);
        expect(stopped.ApplyStopped).toMatchObject({ Index: at, Op: "test_gated", Feature: "test-gated", Needs: CURRENT });
        expect(stopped.Stats.raft.applied_index).toBe(at - 1);
        expect(old.log()).toContain("apply stopped at an entry this binary does not understand");
        const metrics = ok(await old.get("/v1/metrics?format=prometheus"), "metrics").text;
        expect(metrics).toMatch(new RegExp(`edgenode_apply_stopped_index(\\{\\})? ${at}\\b`));

        // `node server members` (the leader's list of versions) names it, the index and what it needs.
        await waitFor("members to show the stop", 20_000, () => {
          const m = Bun.spawnSync([newer, "server", "members", "-address", leader.url], { stdout: "pipe", stderr: "pipe" });
          const row =
            m.stdout
              .toString()
              .split("\n")
              .find((r) => r.startsWith(`${old.name} `)) ?? "";
          return row.includes(`apply stopped at ${at}: needs ${CURRENT} built with feature test-gated`) || undefined;
        });

        // Writes go on, and the older server still acknowledges: with the other newer server stopped,
        // the leader commits with the older one's acknowledgement alone.
        await leader.putVar("stop/after", { v: "2" });
        const other = cluster.servers.find((s) => s !== leader && s !== old) as ClusterServer;
        other.stop();
        try {
          const w = await leader.putVar("stop/quorum", { v: "3" });
          expect(w.ModifyIndex).toBeGreaterThan(at);
        } finally {
          other.cont();
        }
        const commit = (await self(leader)).Stats.raft.commit_index;
        await waitFor(
          "the older server to replicate the later writes",
          20_000,
          async () => (await self(old)).Stats.raft.commit_index >= commit,
        );
        expect((await self(old)).Stats.raft.applied_index).toBe(at - 1);

        // Stale reads are served from its state and say how far behind; a blocking read past its state is
        // refused naming the index; a consistent read is the leader's (forwarded), never older than commit.
        const before = await old.get<{ Items: Record<string, string> }>("/v1/var/stop/before?stale");
        expect(before.status).toBe(200);
        expect(Number(before.headers.get("X-Edgenode-Behind"))).toBeGreaterThan(0);
        const after = await old.get("/v1/var/stop/after?stale");
        expect(after.status).toBe(404);
        expect(Number(after.headers.get("X-Edgenode-Behind"))).toBeGreaterThan(0);
        const idx = Number(before.headers.get("X-Edgenode-Index"));
        const blocking = await old.get(`/v1/var/stop/before?stale&index=${idx}&wait=30s`);
        expect(blocking.status).toBe(503);
        expect(blocking.text).toContain(`index ${at}`);
        const consistent = await old.get<{ Items: Record<string, string> }>("/v1/var/stop/after");
        expect(ok(consistent, "a consistent read through the older server").body.Items).toEqual({ v: "2" });
        // Its state differs from the leader's while it is stopped.
        const oldHash = ok(await old.get<Hash>("/v1/agent/state-hash"), "old hash").body;
        expect(oldHash.Index).toBeLessThan(at);

        // A transfer to it does not happen; it does not become leader when the leader is killed.
        const transfer = leader.http("PUT", `/v1/operator/raft/transfer-leadership?id=${oldId}`, undefined, 30_000);
        const states = new Set<string>();
        const watch = async (ms: number) => {
          const until = Date.now() + ms;
          while (Date.now() < until) {
            states.add((await self(old)).Stats.raft.state);
            await Bun.sleep(25);
          }
        };
        await watch(1_500);
        // The transfer's bound passes without a move (504), the leader unchanged.
        expect((await transfer).status).toBe(504);
        expect(await old.leader()).toBe(leader.rpcAddr);
        await leader.kill();
        const [next] = await Promise.all([cluster.waitForLeader(20_000, [old, other]), watch(3_000)]);
        expect(next).toBe(other);
        await watch(1_000);
        expect([...states]).toEqual(["follower"]);
        // The new leader commits with the older server's acknowledgement (the old leader is down).
        await other.putVar("stop/two", { v: "4" });
        leader.start();
        await leader.waitHttp();

        // A server added after the stop (the configuration change is not applied on the older server,
        // but raft's core has it): once it leads and one other newer server is down, a write needs the
        // older server's acknowledgement, sent to a server its applied configuration does not name (the
        // peer transport learned its address from its admitted stream).
        const fourth = cluster.add({ join: cluster.servers.map((s) => s.rpcAddr) });
        fourth.binary = newer;
        fourth.start();
        await fourth.waitHttp();
        const fourthId = (await self(fourth)).ID;
        await waitFor("the fourth server to be a voter", 30_000, async () => {
          const c = ok(await other.get<{ Servers: { ID: string; Voter: boolean }[] }>("/v1/operator/raft/configuration"), "configuration");
          return c.body.Servers.some((x) => x.ID === fourthId && x.Voter) || undefined;
        });
        const current = await cluster.waitForLeader(20_000, [leader, other, fourth]);
        if (current !== fourth)
          ok(await current.put(`/v1/operator/raft/transfer-leadership?id=${fourthId}`, undefined, 20_000), "transfer to the fourth");
        await cluster.waitForLeader(20_000, [leader, other, fourth]).then((l) => expect(l).toBe(fourth));
        other.stop();
        try {
          await fourth.putVar("stop/four", { v: "6" });
        } finally {
          other.cont();
        }

        // Health stays down once a minute's log line is due at most once more.
        const lines = old.log().split("apply stopped at an entry this binary does not understand").length - 1;
        expect(lines).toBeLessThanOrEqual(1 + Math.floor((Date.now() - stoppedAt) / 60_000));
        expect((await old.get<Health>("/v1/agent/health")).status).toBe(500);

        // Upgraded in place (same data directory), it applies on from that index.
        await old.terminate();
        old.binary = newer;
        old.start();
        await old.waitHttp();
        await waitFor("the upgraded server to be healthy", 30_000, async () => (await old.get<Health>("/v1/agent/health")).status === 200);
        const upgraded = await self(old);
        expect(upgraded.ApplyStopped).toBeUndefined();
        await leader.putVar("stop/last", { v: "5" });
        const hashes = await waitFor("every server on the same state", 30_000, async () => {
          const hs = await Promise.all(
            cluster.servers.map(async (s) => ok(await s.get<Hash>("/v1/agent/state-hash"), `hash of ${s.name}`).body),
          );
          const first = hs[0] as Hash;
          return hs.every((h) => h.Index === first.Index && h.Hash === first.Hash) ? hs : undefined;
        });
        expect((hashes[0] as Hash).Index).toBeGreaterThan(at);
        expect(
          ok(await old.get<{ Items: Record<string, string> }>("/v1/var/stop/quorum?stale"), "a write it acknowledged").body.Items,
        ).toEqual({
          v: "3",
        });
      }),
    240_000,
  );
});
