// Locks on variables against three compiled servers: the leader expires a lock whose TTL passes
// without renewal (also after the leader that armed the timer is killed), lock-delay holds after an
// expiry, a locked variable changes only with its lock ID, renewals keep it, and `var lock` runs a
// command under the lock.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";

const cluster = useCluster("locks");

interface LockedVar {
  Path: string;
  Items: Record<string, string>;
  Lock?: { ID?: string; TTL: number; LockDelay: number };
  ModifyIndex: number;
}

function acquire(s: ClusterServer, path: string, ttl: string, lockDelay: string, items: Record<string, string> = { owner: "test" }) {
  return s.put<LockedVar>(`/v1/var/${path}?lock-acquire`, { Items: items, Lock: { TTL: ttl, LockDelay: lockDelay } });
}

/** Polls the variable until it has no lock; returns the time of the last poll that still saw it (ms). */
async function waitUnlocked(s: ClusterServer, path: string, timeoutMs: number): Promise<{ lastLocked: number; seenFree: number }> {
  let lastLocked = performance.now();
  const seenFree = await waitFor(
    `lock on ${path} to go`,
    timeoutMs,
    async () => {
      const t = performance.now();
      const r = await s.get<LockedVar>(`/v1/var/${path}`, 2000);
      if (r.status === 200 && r.body.Lock === undefined) return performance.now();
      if (r.status === 200) lastLocked = t;
      return undefined;
    },
    25,
  );
  return { lastLocked, seenFree };
}

describe("locks", () => {
  test(
    "a locked variable changes only with its lock ID; renew keeps it past its TTL; release frees it at once",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const got = await acquire(f, "locks/held", "1500ms", "10s");
        expect(got.status).toBe(200);
        const id = got.body.Lock?.ID;
        expect(typeof id).toBe("string");

        // Others see the lock but not its ID.
        const seen = await leader.get<LockedVar>("/v1/var/locks/held");
        expect(seen.body.Lock).toBeDefined();
        expect(seen.body.Lock?.ID).toBeUndefined();

        expect((await acquire(leader, "locks/held", "5s", "0s")).status).toBe(409);
        expect((await f.put("/v1/var/locks/held", { Items: { x: "1" } })).status).toBe(409);
        expect((await f.put("/v1/var/locks/held", { Items: { x: "1" }, Lock: { ID: "not-the-id" } })).status).toBe(409);
        expect((await f.http("DELETE", "/v1/var/locks/held")).status).toBe(409);
        const w = await f.put<LockedVar>("/v1/var/locks/held", { Items: { x: "2" }, Lock: { ID: id } });
        expect(w.status).toBe(200);
        expect(w.body.Items).toEqual({ x: "2" });
        expect(w.body.Lock).toBeDefined();

        // Renew every 500 ms for three TTLs: the lock stays.
        const until = performance.now() + 4500;
        while (performance.now() < until) {
          const r = await f.put<LockedVar>("/v1/var/locks/held?lock-renew", { Lock: { ID: id } });
          expect(r.status).toBe(200);
          await Bun.sleep(500);
        }
        expect((await leader.get<LockedVar>("/v1/var/locks/held")).body.Lock).toBeDefined();

        const rel = await f.put<LockedVar>("/v1/var/locks/held?lock-release", { Lock: { ID: id } });
        expect(rel.status).toBe(200);
        expect((await leader.get<LockedVar>("/v1/var/locks/held")).body.Lock).toBeUndefined();
        // A release is not an expiry: no lock-delay.
        const again = await acquire(f, "locks/held", "5s", "0s");
        expect(again.status).toBe(200);
        expect((await f.put("/v1/var/locks/held?lock-release", { Lock: { ID: again.body.Lock?.ID } })).status).toBe(200);
        // Renewing or releasing a gone lock is a conflict.
        expect((await f.put("/v1/var/locks/held?lock-renew", { Lock: { ID: id } })).status).toBe(409);
      }),
    30_000,
  );

  test(
    "a lock expires after its TTL without renewal, and lock-delay holds after the expiry",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const t0 = performance.now();
        const got = await acquire(f, "locks/ttl", "1s", "3s");
        expect(got.status).toBe(200);
        const { lastLocked, seenFree } = await waitUnlocked(leader, "locks/ttl", 10_000);
        // Not before its TTL (the timer starts once the acquire committed, after t0).
        expect(lastLocked - t0).toBeGreaterThanOrEqual(900);
        expect(seenFree - t0).toBeLessThan(6_000);
        const v = await leader.get<LockedVar>("/v1/var/locks/ttl");
        expect(v.body.Items).toEqual({ owner: "test" });

        // In lock-delay: refused, with a message that says so.
        const refused = await acquire(f, "locks/ttl", "5s", "0s");
        expect(refused.status).toBe(409);
        // The old holder cannot write with its stale ID either.
        expect((await f.put("/v1/var/locks/ttl", { Items: { x: "1" }, Lock: { ID: got.body.Lock?.ID } })).status).toBe(409);

        const acquiredAt = await waitFor(
          "an acquire after the lock-delay",
          10_000,
          async () => {
            const r = await acquire(f, "locks/ttl", "5s", "0s");
            if (r.status === 200) return performance.now();
            expect(r.status).toBe(409);
            return undefined;
          },
          100,
        );
        // The expiry committed after `lastLocked`; the delay runs 3 s from that commit.
        expect(acquiredAt - lastLocked).toBeGreaterThanOrEqual(2_900);
      }),
    30_000,
  );

  test(
    "a TTL up to the 24 h limit is held, never expired at once; one past it is refused",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        // 24 h is within what a timer holds (2^31 ms is 24.8 days); a timer that overflowed would fire at once.
        const r = await acquire(leader, "locks/long", "24h", "0s");
        expect(r.status).toBe(200);
        await Bun.sleep(1_000); // a deliberately bounded observation: the lock must still be there after it
        expect((await leader.get<LockedVar>("/v1/var/locks/long")).body.Lock).toBeDefined();
        expect((await leader.put("/v1/var/locks/long?lock-release", { Lock: { ID: r.body.Lock?.ID } })).status).toBe(200);
        const over = await acquire(leader, "locks/long", "900h", "0s");
        expect(over.status).toBe(400);
        expect(over.text).toContain("Lock.TTL");
        for (const [ttl, delay] of [
          ["0s", "0s"],
          ["-1s", "0s"],
          ["5s", "-1s"],
          ["5s", "900h"],
          ["1500us", "0s"],
          ["bogus", "0s"],
        ] as const) {
          const bad = await acquire(leader, `locks/bad`, ttl, delay);
          expect(`${ttl}/${delay}: ${bad.status}`).toBe(`${ttl}/${delay}: 400`);
        }
      }),
    30_000,
  );

  test(
    "var lock runs a command under the lock, renews it, and releases it on exit with the command's code",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const p = Bun.spawn(
          [join(cluster.dir, "node"), "var", "lock", "-address", f.url, "-ttl", "1s", "locks/cli", "--", "sh", "-c", "sleep 3; exit 7"],
          { stdout: "pipe", stderr: "pipe" },
        );
        try {
          await waitFor(
            "the CLI to hold the lock",
            5_000,
            async () => (await leader.get<LockedVar>("/v1/var/locks/cli")).body.Lock !== undefined,
          );
          // Past the 1 s TTL the CLI's renewals keep the lock while the command runs.
          await Bun.sleep(1_800);
          expect(p.exitCode).toBeNull();
          expect((await leader.get<LockedVar>("/v1/var/locks/cli")).body.Lock).toBeDefined();
          expect((await acquire(leader, "locks/cli", "5s", "0s")).status).toBe(409);
          const code = await p.exited;
          expect(code).toBe(7);
        } finally {
          p.kill("SIGKILL");
        }
        // Released (not expired): no lock on the variable and an immediate acquire succeeds.
        expect((await leader.get<LockedVar>("/v1/var/locks/cli")).body.Lock).toBeUndefined();
        const r = await acquire(leader, "locks/cli", "5s", "0s");
        expect(r.status).toBe(200);
        await leader.put("/v1/var/locks/cli?lock-release", { Lock: { ID: r.body.Lock?.ID } });
      }),
    30_000,
  );

  // Last: it kills the leader.
  test(
    "a lock held when the leader is killed still expires: the new leader rebuilds its timer",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const t0 = performance.now();
        const got = await acquire(leader, "locks/failover", "2s", "2s");
        expect(got.status).toBe(200);
        await waitFor(
          "the lock on a follower",
          5_000,
          async () => (await f.get<LockedVar>("/v1/var/locks/failover?stale")).body.Lock !== undefined,
        );
        await leader.kill();
        const survivors = cluster.running();
        const newLeader = await cluster.waitForLeader(15_000, survivors);
        expect(newLeader).not.toBe(leader);
        const { lastLocked, seenFree } = await waitUnlocked(newLeader, "locks/failover", 15_000);
        // The new leader gives the lock a full TTL from its election, which came after the acquire.
        expect(lastLocked - t0).toBeGreaterThanOrEqual(1_900);
        expect(seenFree - t0).toBeLessThan(14_000);
        // Lock-delay holds on the new leader too.
        expect((await acquire(f, "locks/failover", "5s", "0s")).status).toBe(409);
        const acquiredAt = await waitFor(
          "an acquire after the lock-delay",
          10_000,
          async () => ((await acquire(f, "locks/failover", "5s", "0s")).status === 200 ? performance.now() : undefined),
          100,
        );
        expect(acquiredAt - lastLocked).toBeGreaterThanOrEqual(1_900);

        // The killed server comes back and agrees.
        leader.start();
        await leader.waitHttp();
        await waitFor(
          "the restarted server to see the new lock",
          15_000,
          async () => (await leader.get<LockedVar>("/v1/var/locks/failover?stale")).body.Lock !== undefined,
        );
      }),
    60_000,
  );
});
