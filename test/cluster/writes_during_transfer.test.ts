// Writes while `operator raft transfer-leadership` runs: a write the leader refuses because leadership
// is moving (nothing appended) waits for the new leader and runs there, so the client sees 200, not 503.
import { describe, expect, test } from "bun:test";
import { ok, waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";

const TRANSFERS = 4;
/** Concurrent writers per server: enough that some write meets the short transfer window every time. */
const WRITERS = 4;

const cluster = useCluster("transfer-writes");

/** `WRITERS` loops writing `xfer/<prefix>-<w>-<i>` through `via` until stopped; every answer is kept. */
function writers(prefix: string, via: ClusterServer) {
  const acked: string[] = [];
  const failed: string[] = [];
  let stop = false;
  const done = Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const path = `xfer/${prefix}-${w}-${i}`;
        try {
          const r = await via.put(`/v1/var/${path}`, { Items: { i: String(i) } }, 10_000);
          if (r.status === 200) acked.push(path);
          else failed.push(`${path} via ${via.name}: ${r.status} ${r.text}`);
        } catch (e) {
          failed.push(`${path} via ${via.name}: ${(e as Error).message}`);
        }
      }
    }),
  );
  return {
    acked,
    failed,
    async stop() {
      stop = true;
      await done;
    },
  };
}

/** `node operator raft transfer-leadership` against `via`, run as its own process (the event loop stays free). */
async function transferWithCli(via: ClusterServer): Promise<string> {
  const p = Bun.spawn([cluster.binaryPath, "operator", "raft", "transfer-leadership", "-address", via.url], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`transfer-leadership via ${via.name} exited ${code}: ${out}${err}`);
  return out;
}

/** How many writes `s` routed again after a refusal while leadership moved. */
async function writeRetries(s: ClusterServer): Promise<number> {
  const r = ok(await s.get<{ Counters: { Name: string; Count: number }[] }>("/v1/metrics"), `metrics on ${s.name}`);
  return r.body.Counters.filter((c) => c.Name === "edgenode_rpc_write_retries_total").reduce((a, c) => a + c.Count, 0);
}

/** Every path under `prefix`, read linearizably through `s`, page by page. */
async function listAll(s: ClusterServer, prefix: string): Promise<Set<string>> {
  const have = new Set<string>();
  let next = "";
  do {
    const r = ok(
      await s.get<{ Path: string }[]>(`/v1/vars?prefix=${prefix}${next ? `&next_token=${encodeURIComponent(next)}` : ""}`, 10_000),
      `list on ${s.name}`,
    );
    for (const v of r.body) have.add(v.Path);
    next = r.headers.get("X-Edgenode-NextToken") ?? "";
  } while (next);
  return have;
}

describe("writes during leadership transfers", () => {
  test(
    "writes through the leader and a follower all answer 200 across transfers, and every acknowledged write is readable",
    () =>
      withLogs(cluster, async () => {
        const acked: string[] = [];
        const failed: string[] = [];
        for (let round = 0; round < TRANSFERS; round++) {
          const leader = await cluster.waitForLeader(15_000);
          const follower = cluster.followers(leader)[0]!;
          const viaLeader = writers(`r${round}-leader`, leader);
          const viaFollower = writers(`r${round}-follower`, follower);
          await waitFor(
            "writes through both servers before the transfer",
            15_000,
            () => viaLeader.acked.length >= 20 && viaFollower.acked.length >= 20,
          );
          const before = { leader: viaLeader.acked.length, follower: viaFollower.acked.length };
          console.log(`round ${round}: ${(await transferWithCli(leader)).trim()}`);
          const next = await cluster.waitForLeader(15_000);
          expect(next).not.toBe(leader);
          await waitFor(
            "writes through both servers after the transfer",
            15_000,
            () => viaLeader.acked.length >= before.leader + 20 && viaFollower.acked.length >= before.follower + 20,
          );
          await Promise.all([viaLeader.stop(), viaFollower.stop()]);
          acked.push(...viaLeader.acked, ...viaFollower.acked);
          failed.push(...viaLeader.failed, ...viaFollower.failed);
        }
        console.log(`${acked.length} writes acknowledged across ${TRANSFERS} transfers, ${failed.length} failed`);
        expect(failed).toEqual([]);
        // The transfers did refuse writes mid-flight (else this test showed nothing): each one was retried.
        const retried = (await Promise.all(cluster.running().map(writeRetries))).reduce((a, b) => a + b, 0);
        console.log(`${retried} writes retried on the next leader`);
        expect(retried).toBeGreaterThan(0);
        for (const s of cluster.running()) {
          const have = await listAll(s, "xfer/");
          expect(acked.filter((p) => !have.has(p))).toEqual([]);
        }
      }),
    120_000,
  );
});
