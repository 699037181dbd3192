// GET /v1/operator/raft/stats and the cluster page on a real 3-server cluster of the compiled binary:
// every server listed with the cluster id and indexes that agree after a write; a SIGSTOPped follower
// shown with the reason it did not answer while the others are still answered, within the deadline;
// the page naming the cluster id and the stopped server in its red banner, and green again after SIGCONT.
import { describe, expect, test } from "bun:test";
import type { RaftStats as Stats } from "../../src/api/operator.ts";
import { ok, waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";

async function stats(s: ClusterServer, query = ""): Promise<Stats> {
  return ok(await s.get<Stats>(`/v1/operator/raft/stats${query}`, 5_000), `raft stats on ${s.name}`).body;
}

async function page(s: ClusterServer): Promise<string> {
  const r = await fetch(`${s.url}/ui/`, { signal: AbortSignal.timeout(5_000) });
  return r.text();
}

describe("raft stats on a cluster", () => {
  const cluster = useCluster("raftstats");

  test(
    "every server is listed with the cluster id, and its indexes agree with the others' after a write",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const written = await leader.putVar("stats/a", { v: "1" });
        const self = ok(await leader.get<{ ID: string; ClusterID: string }>("/v1/agent/self"), "agent self").body;
        expect(self.ClusterID).toMatch(/^[0-9a-f-]{36}$/);
        for (const s of cluster.servers) {
          for (const query of ["", "?stale"]) {
            // Followers apply the write a heartbeat later: wait for every server to have it.
            const st = await waitFor(`every server applied the write (${s.name}${query})`, 10_000, async () => {
              const r = await stats(s, query);
              return r.Servers.every((x) => (x.AppliedIndex ?? 0) >= written.ModifyIndex) ? r : undefined;
            });
            expect(st.ClusterID).toBe(self.ClusterID);
            expect(st.Leader).toBe(self.ID);
            expect(st.Servers.map((x) => x.Node).sort()).toEqual(["s1", "s2", "s3"]);
            for (const x of st.Servers) {
              expect(x.Error).toBeUndefined();
              expect(x.State).toBe(x.ID === self.ID ? "leader" : "follower");
              expect(x.Address).toBe(cluster.servers.find((c) => c.name === x.Node)?.rpcAddr ?? "");
              expect(x.CommitIndex).toBeGreaterThanOrEqual(written.ModifyIndex);
              expect(x.LastIndex).toBeGreaterThanOrEqual(x.CommitIndex ?? 0);
              expect(x.Term).toBe(st.Servers.find((l) => l.ID === self.ID)?.Term ?? -1);
            }
          }
        }
        // Settled (nothing written since): the indexes are the same everywhere and nobody lags.
        const settled = await waitFor("the same commit and applied index on every server", 10_000, async () => {
          const r = await stats(leader);
          const idx = new Set(r.Servers.flatMap((x) => [x.CommitIndex, x.AppliedIndex]));
          return idx.size === 1 ? r : undefined;
        });
        for (const x of settled.Servers) expect(x.Lag).toBe(0);
      }),
    60_000,
  );

  test(
    "a SIGSTOPped follower is shown with why, the others still answered within the deadline; the page says so",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const [stopped, other] = cluster.followers(leader);
        if (!stopped || !other) throw new Error("need two followers");
        const clusterId = (await stats(leader)).ClusterID;
        stopped.stop();
        try {
          for (const s of [leader, other]) {
            for (const query of ["", "?stale"]) {
              const started = performance.now();
              const st = await stats(s, query);
              // One ask's timeout (1 s) and a forward; far under the page's 5 s refresh.
              expect(performance.now() - started).toBeLessThan(3_000);
              const row = st.Servers.find((x) => x.Node === stopped.name);
              expect(row?.Error).toContain("no answer within");
              expect(row?.AppliedIndex).toBeUndefined();
              expect(row?.Lag).toBeUndefined();
              for (const x of st.Servers.filter((r) => r.Node !== stopped.name)) {
                expect(x.Error).toBeUndefined();
                expect(x.AppliedIndex).toBeGreaterThan(0);
                expect(x.Lag).toBeDefined();
              }
            }
          }
          for (const s of [leader, other]) {
            const started = performance.now();
            const html = await page(s);
            expect(performance.now() - started).toBeLessThan(4_000);
            expect(html).toContain(`id="cluster-id"><code>${clusterId}</code>`);
            expect(html).toContain('class="banner bad"');
            expect(html).toMatch(new RegExp(`Behind: ${stopped.name} \\([^)]*no answer within`));
            expect(html).toContain(`data-server="${stopped.name}" class="bad"`);
            expect(html).not.toContain(`data-server="${other.name}" class="bad"`);
          }
        } finally {
          stopped.cont();
        }
        // Answering again: the page is green once autopilot sees it healthy too.
        await waitFor("the page green again after SIGCONT", 20_000, async () => {
          const html = await page(leader);
          return html.includes('class="banner ok"') && !html.includes("Behind:") ? true : undefined;
        });
      }),
    60_000,
  );
});
