// A write that arrives while no leader is known waits for one (up to the leader hold) instead of failing
// at the first change of raft state: a leader restarted at once starts as a follower with no leader, and
// its election timer turning it into a candidate is a change that still names no leader.
import { describe, expect, test } from "bun:test";
import { withLogs, useCluster } from "./harness.ts";

const ROUNDS = 3;
const WRITERS = 4;

const cluster = useCluster("restart-writes");

describe("writes right after the leader restarts", () => {
  test(
    `through the restarted server and the others, every write answers 200 (${ROUNDS} restarts)`,
    () =>
      withLogs(cluster, async () => {
        const failed: string[] = [];
        let acked = 0;
        for (let round = 0; round < ROUNDS; round++) {
          const leader = await cluster.waitForLeader(15_000);
          await leader.restart();
          // At once, before the restarted server has heard of any leader: each server takes writes.
          await Promise.all(
            cluster.servers.flatMap((s) =>
              Array.from({ length: WRITERS }, async (_, w) => {
                const path = `restart/${round}-${s.name}-${w}`;
                const r = await s.put(`/v1/var/${path}`, { Items: { w: String(w) } }, 15_000);
                if (r.status === 200) acked++;
                else failed.push(`${path} via ${s.name}${s === leader ? " (restarted)" : ""}: ${r.status} ${r.text}`);
              }),
            ),
          );
        }
        expect(failed).toEqual([]);
        expect(acked).toBe(ROUNDS * cluster.servers.length * WRITERS);
      }),
    120_000,
  );
});
