// A cluster with one server on the previous release (built from this repository's history,
// test/upgrade/previous_release.ts) and two on this one, with the test-only gated feature compiled in:
// every server's version is shown, the cluster version stays at the previous release while that
// server is there, the gated feature (and a snapshot file of the newer format) is refused naming it, and once it runs this release again (same
// data directory) the cluster version is committed on every server and the feature is accepted, and a
// server of the previous release can no longer join.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "../../src/lib/codec.ts";
import { EntryType } from "../../src/raft/storage.ts";
import { Fsm } from "../../src/server/fsm.ts";
import { Cluster, type ClusterServer, freePort, ok, waitFor, withLogs } from "../cluster/harness.ts";
import { previousRelease, previousReleaseBinary } from "./previous_release.ts";
import { testFeaturesBinary } from "./test_features_binary.ts";

const cluster = new Cluster("mixed-versions");
const prev = previousRelease();
const CURRENT = (await Bun.file(new URL("../../package.json", import.meta.url)).json()).version as string;
let current = "";
let previousBinary = "";
let old: ClusterServer;

interface Configuration {
  ClusterVersion?: string;
  Servers: { ID: string; Node: string; Voter: boolean; Leader: boolean; Version?: string }[];
}
interface Self {
  ID: string;
  Version: string;
  ClusterVersion?: string;
  Formats?: { Log: number; Snapshot: number; Rpc: number };
  Stats: { raft: { applied_index: number; commit_index: number } };
}

/** The configuration as `s` shows it, once every server's version there is `want` (by name). */
async function versionsShown(s: ClusterServer, want: Record<string, string>, clusterVersion: string): Promise<Configuration> {
  let last = "";
  return waitFor(`${s.name} to show versions ${JSON.stringify(want)}, cluster version ${clusterVersion}`, 30_000, async () => {
    const c = ok(await s.get<Configuration>("/v1/operator/raft/configuration"), "configuration").body;
    const shown = Object.fromEntries(c.Servers.map((x) => [x.Node, x.Version]).sort());
    last = JSON.stringify({ shown, ClusterVersion: c.ClusterVersion });
    return JSON.stringify(shown) === JSON.stringify(want) && c.ClusterVersion === clusterVersion ? c : undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}; last shown ${last}`);
  });
}

/** A snapshot file of format 2 (it carries a cluster version), written by this release's state machine. */
async function formatTwoSnapshot(): Promise<Uint8Array> {
  const fsm = new Fsm(
    () => "global",
    () => "",
  );
  await fsm.apply({ index: 1, term: 1, type: EntryType.Normal, data: encode({ op: "var.put", path: "f2", items: { k: "v" }, now: 1 }) });
  await fsm.apply({ index: 2, term: 1, type: EntryType.Normal, data: encode({ op: "cluster_version", version: CURRENT }) });
  const chunks: Uint8Array[] = [];
  const result = { size: 0, sha256: "", digest: "", records: 0 };
  const meta = { index: 2, term: 1, config: { servers: [] } };
  for await (const c of fsm.snapshotChunks(fsm.state.view(), meta, "1-2", result, {})) chunks.push(c);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  await cluster.init();
  current = await testFeaturesBinary(cluster.dir);
  previousBinary = await previousReleaseBinary();
  const ports = Array.from({ length: 3 }, () => ({ http: freePort(), rpc: freePort() }));
  const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
  for (const p of ports) cluster.add({ bootstrapExpect: 3, ports: p, join: all });
  for (const s of cluster.servers) s.binary = current;
  old = cluster.servers[2] as ClusterServer;
  old.binary = previousBinary;
  for (const s of cluster.servers) s.start();
  await Promise.all(cluster.servers.map((s) => s.waitHttp()));
}, 900_000);

afterAll(async () => {
  await cluster.cleanup();
});

describe("a cluster with a server of the previous release", () => {
  test(
    "shows each server's version; the cluster version is the previous release's; the gated feature is refused naming it, then accepted after its upgrade; then a server of the previous release cannot join",
    () =>
      withLogs(cluster, async () => {
        let leader = await cluster.waitForLeader(20_000);
        // The previous release does not learn versions: lead from a server of this one.
        if (leader === old) {
          const to = cluster.servers[0] as ClusterServer;
          const id = ok(await to.get<Self>("/v1/agent/self"), "self").body.ID;
          ok(await leader.put(`/v1/operator/raft/transfer-leadership?id=${id}`), "transfer");
          leader = await cluster.waitForLeader(20_000);
        }
        expect(leader).not.toBe(old);
        const mixed = { s1: CURRENT, s2: CURRENT, s3: prev.version };
        await versionsShown(leader, mixed, prev.version);
        // A follower of this release forwards the read to the leader: the same answer.
        await versionsShown(cluster.servers.find((s) => s !== leader && s !== old) as ClusterServer, mixed, prev.version);

        const self = ok(await leader.get<Self>("/v1/agent/self"), "self").body;
        expect(self.Version).toBe(CURRENT);
        expect(self.ClusterVersion).toBe(prev.version);
        expect(self.Formats).toEqual({ Log: 2, Snapshot: 2, Rpc: 1 });
        expect(ok(await old.get<Self>("/v1/agent/self"), "old self").body.Version).toBe(prev.version);

        const members = Bun.spawnSync([current, "server", "members", "-address", leader.url], { stdout: "pipe", stderr: "pipe" });
        expect(members.exitCode).toBe(0);
        const rows = members.stdout.toString().trim().split("\n");
        expect(rows[0]).toMatch(/\bBuild\b/);
        expect(rows.find((r) => r.startsWith("s3 "))).toMatch(new RegExp(`\\s${prev.version.replaceAll(".", "\\.")}\\s+global$`));
        expect(rows.find((r) => r.startsWith("s1 "))).toMatch(new RegExp(`\\s${CURRENT.replaceAll(".", "\\.")}\\s+global$`));

        const refused = await leader.put<{ error?: string }>("/v1/operator/test-gated?value=before");
        expect(refused.status).toBe(409);
        expect(refused.text).toContain("test-gated");
        expect(refused.text).toContain(`s3 (`);
        expect(refused.text).toContain(`runs ${prev.version}`);

        // A snapshot file of the newer format (format 2) is refused the same way: s3 could not read it.
        const restore = await fetch(`${leader.url}/v1/operator/snapshot`, { method: "PUT", body: await formatTwoSnapshot() });
        const restoreText = await restore.text();
        expect(`${restore.status} ${restoreText}`).toMatch(new RegExp(`^409 .*s3 \\(.*runs ${prev.version.replaceAll(".", "\\.")}`));

        // A file every server reads (format 1: no cluster version written yet) is restored on every server,
        // the previous release's included: the leader stages the verified file on the peers the way that
        // release expects (size and digest up front), not from the upload's first byte (one-pass-restore).
        await leader.putVar("mixed/restored", { v: "before" });
        const saved = await fetch(`${leader.url}/v1/operator/snapshot`);
        expect(saved.status).toBe(200);
        const file = new Uint8Array(await saved.arrayBuffer());
        await leader.putVar("mixed/restored", { v: "after" });
        const put = await fetch(`${leader.url}/v1/operator/snapshot`, { method: "PUT", body: file });
        expect(`${put.status} ${await put.text()}`).toMatch(/^200 /);
        for (const s of cluster.servers)
          await waitFor(`${s.name} to serve the restored state`, 30_000, async () => {
            const r = await s.get<{ Items: Record<string, string> }>("/v1/var/mixed/restored?stale");
            return r.status === 200 && r.body.Items.v === "before";
          });
        // Staged there by the leader, not fetched at its apply after a failed staging.
        expect(old.log()).toContain("restore: staged here");
        expect(old.log()).not.toContain("restore: fetched staged snapshot");
        expect(leader.log()).not.toContain("restore: staging on a peer failed");

        // Several rounds later, nothing the old server cannot apply was written: it applies all the others do.
        await leader.putVar("mixed/marker", { v: "1" });
        const commit = ok(await leader.get<Self>("/v1/agent/self"), "self").body.Stats.raft.commit_index;
        await waitFor("the old server to apply everything committed", 20_000, async () => {
          const s = ok(await old.get<Self>("/v1/agent/self"), "old self").body;
          return s.Stats.raft.applied_index >= commit;
        });
        const marker = ok(await old.get<{ Items: Record<string, string> }>("/v1/var/mixed/marker?stale"), "marker on s3");
        expect(marker.body.Items).toEqual({ v: "1" });

        // Upgrade in place: the same data directory, this release's binary.
        await old.terminate();
        old.binary = current;
        old.start();
        await old.waitHttp();
        const upgraded = { s1: CURRENT, s2: CURRENT, s3: CURRENT };
        leader = await cluster.waitForLeader(20_000);
        await versionsShown(leader, upgraded, CURRENT);
        // The committed cluster version reaches every server through the log.
        for (const s of cluster.servers)
          await waitFor(`${s.name} to apply cluster version ${CURRENT}`, 20_000, async () => {
            const b = ok(await s.get<Self>("/v1/agent/self"), `self of ${s.name}`).body;
            return b.ClusterVersion === CURRENT;
          });
        // The data written before the upgrade is all there on the upgraded server.
        expect(ok(await old.get<{ Items: Record<string, string> }>("/v1/var/mixed/marker?stale"), "marker").body.Items).toEqual({ v: "1" });

        const accepted = await leader.put<{ Value: string; Index: number }>("/v1/operator/test-gated?value=after");
        expect(accepted.status).toBe(200);
        expect(accepted.body.Value).toBe("after");

        // A server of the previous release can no longer join: it could not apply what is written now.
        const late = cluster.add({ join: cluster.servers.map((s) => s.rpcAddr) });
        late.binary = previousBinary;
        late.start();
        await waitFor("the previous release's join to be refused", 30_000, () =>
          late.log().includes(`runs ${prev.version}, below the cluster version ${CURRENT}`),
        );
        const conf = ok(await leader.get<Configuration>("/v1/operator/raft/configuration"), "configuration").body;
        expect(conf.Servers.map((x) => x.Node).sort()).toEqual(["s1", "s2", "s3"]);
      }),
    300_000,
  );
});
