// The cluster key in operation, on compiled servers: rotating it ([old] -> [old, new] -> [new, old]
// -> [new], SIGHUP at each step, a follower restarted after each so fresh sessions are dialled with
// the step's first key) with writes succeeding throughout; and the secure default: a non-loopback RPC
// port with neither key nor TLS refuses to start, and `insecure_rpc = true` starts it with a warning.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { ClusterKeys } from "../../src/transport/cluster_keys.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { Cluster, keygen, useCluster, waitFor, withLogs, type ClusterServer } from "./harness.ts";

describe("key rotation without downtime", () => {
  let oldKey = "";
  let newKey = "";
  const cluster = useCluster("keyrot", {
    start: async (c) => {
      await c.init();
      oldKey = c.key;
      newKey = keygen(c.binaryPath);
      await c.startServers(3);
      await c.waitForLeader(15_000);
    },
    timeoutMs: 120_000,
  });

  /** Writes every server's key list, SIGHUPs each, and waits for each to log the reload. */
  async function step(keys: string[], n: number): Promise<void> {
    const line = keys.length === 1 ? `  encrypt = "${keys[0]}"` : `  encrypt = [${keys.map((k) => `"${k}"`).join(", ")}]`;
    for (const s of cluster.servers) {
      const text = readFileSync(s.configPath, "utf8");
      const next = text.replace(/^ {2}encrypt = .*$/m, line);
      expect(next).not.toBe(text);
      writeFileSync(s.configPath, next);
      s.proc!.kill("SIGHUP");
    }
    for (const s of cluster.servers) {
      await waitFor(
        `${s.name} to reload its keys (${n})`,
        10_000,
        () =>
          s.log().split(`cluster key ring reloaded (${keys.length} key`).length - 1 >= 1 &&
          s.log().split("cluster key ring reloaded").length - 1 >= n,
      );
    }
  }

  /** Restarts a follower, so its sessions are dialled anew, and waits until it has applied a write made after. */
  async function restartFollower(i: number): Promise<void> {
    const leader = await cluster.waitForLeader(15_000);
    const f = cluster.followers(leader)[i % 2]!;
    await f.restart();
    const w = await leader.putVar(`rot/after-restart-${i}`, { n: String(i) });
    await waitFor(`${f.name} to apply a write after its restart`, 20_000, async () => {
      const r = await f.get<{ ModifyIndex: number }>(`/v1/var/rot/after-restart-${i}?stale`);
      return r.status === 200 && r.body.ModifyIndex === w.ModifyIndex;
    });
  }

  test(
    "[old] -> [old, new] -> [new, old] -> [new]: every write succeeds, and then only the new key opens a session",
    () =>
      withLogs(cluster, async () => {
        let writes = 0;
        const failures: string[] = [];
        let stop = false;
        // Writes go to whichever server leads; a restarted follower must never fail one.
        const writer = (async () => {
          while (!stop) {
            const leader = await cluster.waitForLeader(10_000);
            try {
              await leader.putVar(`rot/w${writes % 50}`, { n: String(writes) });
              writes++;
            } catch (e) {
              failures.push((e as Error).message);
            }
            await Bun.sleep(20);
          }
        })();
        /** Writes made by the end of each step: each step must see some. */
        const marks: number[] = [];
        const more = (n: number) => waitFor(`writes to go on (past ${n})`, 10_000, () => writes > n);
        try {
          for (const [i, keys] of [[oldKey, newKey], [newKey, oldKey], [newKey]].entries()) {
            await step(keys, i + 1);
            await restartFollower(i);
            await more(writes);
            marks.push(writes);
          }
        } finally {
          stop = true;
          await writer;
        }
        expect(failures).toEqual([]);
        expect(marks[0]).toBeGreaterThan(0);
        expect(marks[1]!).toBeGreaterThan(marks[0]!);
        expect(marks[2]!).toBeGreaterThan(marks[1]!);
        // The old key no longer opens a session anywhere; the new one does.
        for (const [key, works] of [
          [oldKey, false],
          [newKey, true],
        ] as const) {
          const p = new ConnPool({ keyed: { keys: new ClusterKeys([key]), self: () => ({ id: "probe", region: "global" }) } });
          try {
            for (const s of cluster.servers) {
              const r = await p.call(s.rpcAddr, "Status.Ping", {}, { timeoutMs: 3_000 }).then(
                () => "ok",
                (e: unknown) => (e as Error).message,
              );
              if (works) expect(r).toBe("ok");
              else expect(r).toContain("cluster key does not match");
            }
          } finally {
            await p.close();
          }
        }
      }),
    120_000,
  );
});

describe("secure by default", () => {
  const cluster = new Cluster("exposure");
  beforeAll(() => cluster.init(), 120_000);
  afterAll(() => cluster.cleanup());

  async function exited(s: ClusterServer): Promise<number> {
    return waitFor(`${s.name} to exit`, 15_000, () => (s.proc && s.proc.exitCode !== null ? s.proc.exitCode : undefined));
  }

  test("a server bound to 0.0.0.0 with neither key nor tls.rpc refuses to start, naming both fixes and insecure_rpc", () =>
    withLogs(cluster, async () => {
      const s = cluster.add({ encrypt: [], bindAddr: "0.0.0.0", bootstrapExpect: 1 });
      s.start();
      expect(await exited(s)).toBe(1);
      const log = s.log();
      expect(log).toContain("the RPC port is reachable beyond this machine (bind_addr 0.0.0.0");
      expect(log).toContain("node operator keygen");
      expect(log).toContain("insecure_rpc = true");
    }));

  test("with insecure_rpc = true it starts, serves, and warns that anyone can join", () =>
    withLogs(cluster, async () => {
      const s = cluster.add({ encrypt: [], bindAddr: "0.0.0.0", bootstrapExpect: 1, serverHcl: "  insecure_rpc = true\n" });
      s.start();
      await s.waitHttp();
      await waitFor("a leader", 15_000, async () => (await s.leader()) !== "");
      expect(s.log()).toContain(
        "server: insecure_rpc: the RPC port accepts unauthenticated server sessions; anyone who can reach it can join the cluster",
      );
      await s.terminate();
    }));

  test("the same address with a key starts without the warning", () =>
    withLogs(cluster, async () => {
      const s = cluster.add({ bindAddr: "0.0.0.0", bootstrapExpect: 1 });
      s.start();
      await s.waitHttp();
      await waitFor("a leader", 15_000, async () => (await s.leader()) !== "");
      expect(s.log()).not.toContain("insecure_rpc");
      await s.terminate();
    }));
});
