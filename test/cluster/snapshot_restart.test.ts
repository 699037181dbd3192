// A server restarted after a restore, its log compacted through the restore entry, comes back from its
// raft snapshot of the restored state alone: the restored variables, and the cluster's own settings as of
// the restore (autopilot's configuration, the cluster version), which the uploaded file does not hold.
// The raft snapshot after a restore is the staged file under a new header (raft_snapshots.ts take): this
// is what keeps that header honest. The uploaded file is a format 1 file from elsewhere (no autopilot, no
// cluster version, another index and term): a raft snapshot that kept its header would restart this
// server on the defaults.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { waitFor, withLogs, type Cluster, type ClusterServer } from "./harness.ts";
import { getItems, restoreFile, startCluster, writeVarsSnapshot } from "./snapshot_cluster.ts";

let cluster: Cluster;
const VARS = 300;
/** Not autopilot's defaults, so a server that fell back to them shows it. */
const AUTOPILOT = { CleanupDeadServers: false, MaxTrailingLogs: 777, ServerStabilizationTime: "3s" };

beforeAll(async () => {
  cluster = await startCluster("snap-restart");
}, 60_000);

afterAll(async () => {
  await cluster?.cleanup();
});

interface Self {
  ClusterVersion?: string;
  Stats: { raft: { applied_index: number; last_snapshot_index: number } };
}

async function self(s: ClusterServer): Promise<Self> {
  const r = await s.get<Self>("/v1/agent/self");
  expect(r.status).toBe(200);
  return r.body;
}

async function autopilot(s: ClusterServer): Promise<Record<string, unknown> | undefined> {
  const r = await s.get<Record<string, unknown>>("/v1/operator/autopilot/configuration?stale");
  return r.status === 200 ? r.body : undefined;
}

describe("restart after a restore", () => {
  test(
    "a server restarted from its raft snapshot of a restore serves the restored state with the cluster's own settings",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const [via] = cluster.followers(leader) as [ClusterServer];
        await leader.putVar("before/only", { v: "old" });
        expect((await leader.put("/v1/operator/autopilot/configuration", AUTOPILOT)).status).toBe(200);
        for (const s of cluster.servers)
          await waitFor(`${s.name} applies autopilot's configuration`, 10_000, async () => (await autopilot(s))?.MaxTrailingLogs === 777);
        const version = (await self(leader)).ClusterVersion;

        const file = join(cluster.dir, "restart.snap");
        await writeVarsSnapshot(file, "rs", VARS, 200, 3);
        const r = await restoreFile(via, file);
        expect(r.status).toBe(200);
        const restoredAt = (r.body as { Index: number }).Index;
        expect(restoredAt).toBeGreaterThan(0);

        // Every server's raft snapshot covers the restore entry (which compacts the log through it).
        for (const s of cluster.servers)
          await waitFor(`${s.name} takes a raft snapshot covering the restore`, 30_000, async () =>
            (await self(s)).Stats.raft.last_snapshot_index >= restoredAt ? true : undefined,
          );

        for (const s of [via, leader]) {
          const from = s.log().length;
          await s.restart();
          await waitFor(`${s.name} back on the restored state`, 30_000, async () => (await getItems(s, "marker/state"))?.tag === "rs");
          expect(await getItems(s, `rs/k${VARS - 1}`)).toBeDefined();
          expect(await getItems(s, "before/only")).toBeUndefined();
          const back = await self(s);
          expect(back.Stats.raft.last_snapshot_index).toBeGreaterThanOrEqual(restoredAt);
          expect(back.ClusterVersion).toBe(version);
          expect(await autopilot(s)).toMatchObject(AUTOPILOT);
          // Started from the snapshot: the restore entry was not applied again (it is no longer in the log).
          const boot = s.log().slice(from);
          expect(boot).not.toMatch(/restore: swapped/);
          expect(boot).not.toMatch(/fetched staged snapshot|no usable staged snapshot/);
        }

        // The cluster goes on above the restore.
        const next = await cluster.waitForLeader(20_000);
        const after = await next.putVar("after/restart", { v: "new" });
        expect(after.ModifyIndex).toBeGreaterThan(restoredAt);
        for (const s of cluster.servers)
          await waitFor(
            `${s.name} sees the write after the restarts`,
            20_000,
            async () => (await getItems(s, "after/restart"))?.v === "new",
          );
      }),
    150_000,
  );
});
