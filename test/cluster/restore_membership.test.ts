// README: "The cluster keeps its current membership" across a restore. A snapshot saved while the
// cluster had three servers is restored after a fourth joined: the raft configuration afterwards
// still has all four, the fourth serves the restored state, and the cluster still commits writes.
import { expect, test } from "bun:test";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";
import { getItems, startClusterIn } from "./snapshot_cluster.ts";

interface RaftServer {
  ID: string;
  Address: string;
  Voter: boolean;
}

const cluster = useCluster("membership", { start: (c) => startClusterIn(c), timeoutMs: 90_000 });

async function configuration(s: ClusterServer): Promise<RaftServer[]> {
  const r = await s.get<{ Servers: RaftServer[] }>("/v1/operator/raft/configuration");
  if (r.status !== 200) throw new Error(`configuration on ${s.name}: ${r.status} ${r.text}`);
  return r.body.Servers;
}

const addresses = (servers: RaftServer[]) => servers.map((x) => x.Address).sort();

test("a restore of a snapshot taken with three servers keeps the four the cluster has now", async () => {
  await withLogs(cluster, async () => {
    const leader = await cluster.waitForLeader(10_000);
    await leader.putVar("m/x", { v: "saved" });
    const saved = await fetch(`${leader.url}/v1/operator/snapshot`);
    expect(saved.status).toBe(200);
    const file = new Uint8Array(await saved.arrayBuffer());
    const three = await configuration(leader);
    expect(three).toHaveLength(3);

    const fourth = cluster.add({ bootstrapExpect: 0, join: cluster.servers.map((s) => s.rpcAddr) });
    fourth.start();
    await fourth.waitHttp();
    const four = await waitFor("the fourth server to be a voter", 30_000, async () => {
      const c = await configuration(leader).catch(() => undefined);
      return c && c.length === 4 && c.every((x) => x.Voter) ? c : undefined;
    });
    expect(addresses(four)).toContain(fourth.rpcAddr);
    await leader.putVar("m/x", { v: "after-join" });

    const restore = await fetch(`${leader.url}/v1/operator/snapshot`, { method: "PUT", body: file });
    expect(restore.status).toBe(200);

    // The configuration is the current one, not the snapshot's, on every server.
    for (const s of cluster.servers) expect(addresses(await configuration(s))).toEqual(addresses(four));
    const now = await cluster.waitForLeader(10_000);
    expect(addresses(await configuration(now))).toEqual(addresses(four));
    // The fourth, absent from the snapshot, applied the restore and still takes part in commits.
    await waitFor(
      "the fourth server to serve the restored state",
      30_000,
      async () => (await getItems(fourth, "m/x").catch(() => undefined))?.v === "saved",
    );
    await now.putVar("m/y", { v: "after-restore" });
    await waitFor(
      "the fourth server to apply a write after the restore",
      15_000,
      async () => (await getItems(fourth, "m/y").catch(() => undefined))?.v === "after-restore",
    );
    expect(addresses(await configuration(fourth))).toEqual(addresses(four));
  });
}, 150_000);
