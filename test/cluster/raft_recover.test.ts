// Recovery after quorum loss (issue #25 item 1): two of three servers SIGKILLed and their data
// directories deleted while writes run; `operator raft recover` on the stopped survivor (the leader, so
// every write acknowledged was committed through it); it starts alone and serves; two fresh servers join;
// every acknowledged write is on all three, and the write load resumes. `recover` against a running
// agent's directory, or with peers it cannot parse, is refused and changes nothing.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ClusterServer, useCluster, waitFor, withLogs } from "./harness.ts";
import { listVars } from "./snapshot_cluster.ts";

const SNAP = { snapshotThreshold: 40, trailingLogs: 10 };

// Small snapshot thresholds: the survivor recovers over a log that starts at a snapshot, takes new
// snapshots after the recovery entry, and the fresh servers catch up by InstallSnapshot.
const cluster = useCluster("recover", { server: SNAP, leaderMs: 20_000, timeoutMs: 120_000 });

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([cluster.binaryPath, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/** A digest of every file under `dir` (names and bytes): equal digests, an unchanged directory. */
function digestOf(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name !== "agent.lock") h.update(`${p}\0${statSync(p).size}\0`).update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest("hex");
}

/** Writes w/<n> one after another to `target()`, each bounded; keeps those answered 200. */
class WriteLoad {
  readonly acked = new Map<string, string>();
  failures = 0;
  private n = 0;
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(private readonly target: () => ClusterServer) {}

  start(): void {
    this.done = (async () => {
      while (!this.stopped) {
        const path = `w/${this.n++}`;
        const value = String(this.n);
        const r = await fetch(`${this.target().url}/v1/var/${path}`, {
          method: "PUT",
          body: JSON.stringify({ Items: { v: value } }),
          signal: AbortSignal.timeout(1_500),
        }).catch(() => undefined);
        if (r?.status === 200) this.acked.set(path, value);
        else {
          this.failures++;
          await Bun.sleep(50); // a pause between failed writes, not a wait for a condition
        }
        await r?.arrayBuffer().catch(() => {});
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** edgenode_offline_operations_total by op, from the agent's metrics. */
async function offlineOps(s: ClusterServer): Promise<Record<string, number>> {
  const r = await s.get<{ Counters: { Name: string; Count: number; Labels: Record<string, string> }[] }>("/v1/metrics");
  expect(r.status).toBe(200);
  const out: Record<string, number> = {};
  for (const c of r.body.Counters) if (c.Name === "edgenode_offline_operations_total") out[c.Labels.op ?? ""] = c.Count;
  return out;
}

/** Every w/ variable's value on `s` (its own view): all pages of the list, then each variable. */
async function varsOn(s: ClusterServer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of await listVars(s)) {
    if (!v.Path.startsWith("w/")) continue;
    const r = await s.get<{ Items: { v: string } }>(`/v1/var/${v.Path}?stale`);
    if (r.status === 200) out.set(v.Path, r.body.Items.v);
  }
  return out;
}

test("two of three servers lost for good: recover the survivor, two fresh servers join, every acknowledged write is on all three", async () => {
  await withLogs(cluster, async () => {
    const leader = await cluster.waitForLeader(20_000);
    const lost = cluster.followers(leader);
    const load = new WriteLoad(() => leader);
    load.start();
    await waitFor("writes acknowledged", 20_000, async () => (load.acked.size >= 150 ? true : undefined));
    // Both followers die and their disks with them, while writes run.
    await Promise.all(lost.map((s) => s.kill()));
    for (const s of lost) rmSync(s.dataDir, { recursive: true, force: true });
    await waitFor("writes failing without a quorum", 20_000, async () => (load.failures >= 3 ? true : undefined));
    await load.stop();
    const acked = new Map(load.acked);
    await leader.kill();
    expect(leader.log()).toMatch(/snapshot taken/); // the log it recovers over starts at a snapshot

    // Peers it cannot parse, or that leave this server out, are refused before anything is touched.
    const before = digestOf(leader.dataDir);
    for (const [peers, why] of [
      ["nonsense", `"nonsense" is not ID=HOST:PORT`],
      ["a=127.0.0.1:99999", `"127.0.0.1:99999" (of a) is not HOST:PORT`],
      ["a=127.0.0.1:1,a=127.0.0.1:2", "a is named twice"],
      [`someone-else=${leader.rpcAddr}`, "-peers must name this server"],
    ] as const) {
      const r = await run(["operator", "raft", "recover", "-config", leader.configPath, "-peers", peers]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(why);
    }
    expect(digestOf(leader.dataDir)).toBe(before);

    // Shown first: the log, the commit index and the membership of three.
    const shown = await run(["operator", "raft", "recover", "-config", leader.configPath]);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/Last log index += \d+ \(term \d+\)/);
    expect(shown.out).toContain("Nothing changed");
    for (const s of cluster.servers) expect(shown.out).toContain(s.rpcAddr);
    expect(digestOf(leader.dataDir)).toBe(before);
    const id = /Server ID += (\S+)/.exec(shown.out)?.[1];
    expect(id).toBeDefined();
    const lastIndex = Number(/Last log index += (\d+)/.exec(shown.out)?.[1]);

    const rec = await run(["operator", "raft", "recover", "-config", leader.configPath, "-peers", `${id}=${leader.rpcAddr}`]);
    expect(rec.err).toBe("");
    expect(rec.code).toBe(0);
    expect(rec.out).toContain(`written as a configuration entry at index ${lastIndex + 1}`);
    expect(rec.out).toContain("writes acknowledged only by the lost servers, which never reached this one, are gone");

    // It starts alone, elects itself and serves every write it acknowledged.
    leader.start();
    await leader.waitHttp();
    await cluster.waitForLeader(20_000, [leader]);
    expect(leader.log()).toContain('starting on a data directory changed offline by "raft recover"');
    expect(await offlineOps(leader)).toEqual({ "raft recover": 1 });
    const here = await varsOn(leader);
    for (const [path, value] of acked) expect(here.get(path)).toBe(value);

    // Two fresh servers with empty directories join it; the write load resumes.
    const fresh = [cluster.add({ ...SNAP, join: [leader.rpcAddr] }), cluster.add({ ...SNAP, join: [leader.rpcAddr] })];
    for (const s of fresh) s.start();
    await Promise.all(fresh.map((s) => s.waitHttp()));
    const resumed = new WriteLoad(() => leader);
    resumed.start();
    await waitFor("three voters", 30_000, async () => {
      const r = await leader.get<{ Servers: { Voter: boolean; Address: string }[] }>("/v1/operator/raft/configuration");
      return r.status === 200 && r.body.Servers.length === 3 && r.body.Servers.every((s) => s.Voter) ? r.body.Servers : undefined;
    });
    await waitFor("writes acknowledged again", 20_000, async () => (resumed.acked.size >= 20 ? true : undefined));
    await resumed.stop();
    const all = new Map([...acked, ...resumed.acked]);
    for (const s of [leader, ...fresh]) {
      const got = await waitFor(`${s.name} holds every acknowledged write`, 30_000, async () => {
        const v = await varsOn(s);
        return [...all].every(([p, x]) => v.get(p) === x) ? v : undefined;
      }).catch(() => varsOn(s));
      for (const [path, value] of all) expect(got.get(path)).toBe(value);
    }

    // Against a running agent's directory: refused, naming it, and nothing changes.
    await cluster.waitForLeader(20_000, [leader, ...fresh]);
    const held = digestOf(leader.dataDir);
    const refused = await run(["operator", "raft", "recover", "-config", leader.configPath, "-peers", `${id}=${leader.rpcAddr}`]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`in use by another process (PID ${leader.proc?.pid}, agent)`);
    expect(digestOf(leader.dataDir)).toBe(held);
    const peers = await leader.get<{ Servers: unknown[] }>("/v1/operator/raft/configuration");
    expect(peers.body.Servers.length).toBe(3);

    // The recovered membership is in the log and in the snapshots taken since: it survives a restart.
    expect(leader.tail(100_000)).toMatch(/snapshot taken/); // this boot's log: after the recovery
    for (const s of fresh) expect(s.log()).toContain("installed snapshot from leader");
    await leader.restart();
    await cluster.waitForLeader(20_000, [leader, ...fresh]);
    const after = await leader.get<{ Servers: { Voter: boolean }[] }>("/v1/operator/raft/configuration");
    expect(after.body.Servers.length).toBe(3);
    const v = await varsOn(leader);
    for (const [path, value] of all) expect(v.get(path)).toBe(value);
  });
}, 240_000);
