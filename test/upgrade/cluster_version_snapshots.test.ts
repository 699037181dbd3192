// The committed cluster version is replicated state, not memory: once its entry is compacted into a raft
// snapshot, a restarted server takes it back from its snapshot, and a server that joins later receives
// it with the snapshot the leader sends (the log no longer holds the entry).
import { describe, expect, test } from "bun:test";
import { type ClusterServer, ok, waitFor, withLogs, useCluster } from "../cluster/harness.ts";

const cluster = useCluster("cluster-version-snapshots", { server: { snapshotThreshold: 16, trailingLogs: 4 }, leaderMs: false });
const CURRENT = (await Bun.file(new URL("../../package.json", import.meta.url)).json()).version as string;

interface Self {
  ClusterVersion?: string;
  Stats: { raft: { applied_index: number; last_snapshot_index: number } };
}

const self = async (s: ClusterServer) => ok(await s.get<Self>("/v1/agent/self"), `self of ${s.name}`).body;

describe("the cluster version across snapshots", () => {
  test(
    "a restarted server and a late joiner both have it from a snapshot",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(20_000);
        for (const s of cluster.servers)
          await waitFor(`${s.name} to apply cluster version ${CURRENT}`, 20_000, async () => (await self(s)).ClusterVersion === CURRENT);
        let n = 0;
        for (; n < 100; n++) await leader.putVar(`snap/k${n}`, { i: String(n) });
        // A server snapshots a while after its last snapshot (raft_snapshots.ts, the duty factor): write on until each has.
        for (const s of cluster.servers)
          await waitFor(`${s.name} to snapshot past the entry`, 30_000, async () => {
            await leader.putVar(`snap/k${n++}`, { i: String(n) });
            return (await self(s)).Stats.raft.last_snapshot_index >= 20;
          });

        const restarted = cluster.followers(leader)[0] as ClusterServer;
        await restarted.kill();
        restarted.start();
        await restarted.waitHttp();
        const after = await waitFor(`${restarted.name} to apply again`, 20_000, async () => {
          const b = await self(restarted);
          return b.Stats.raft.applied_index >= 20 ? b : undefined;
        });
        expect(after.ClusterVersion).toBe(CURRENT);

        const late = cluster.add({ join: cluster.servers.map((s) => s.rpcAddr) });
        late.start();
        await late.waitHttp();
        const joined = await waitFor(`${late.name} to catch up`, 30_000, async () => {
          const b = await self(late).catch(() => undefined);
          return b && b.Stats.raft.applied_index >= 100 ? b : undefined;
        });
        expect(joined.Stats.raft.last_snapshot_index).toBeGreaterThan(0);
        expect(joined.ClusterVersion).toBe(CURRENT);
      }),
    120_000,
  );
});
