// A rolling upgrade as the README's procedure has an operator do it: three servers of the previous
// release (built from this repository's history, previous_release.ts), upgraded one at a time in place
// (graceful stop, this release's binary on the same data directory), the leader last, while clients
// of the nemesis's workload (test/nemesis/workload.ts) read, write and CAS through random servers and
// a ledger client writes keys of its own once each. The first server upgraded is rolled back once and
// upgraded again (a rollback before the cluster version is raised); after the raise a server rolled
// back is named by the leader's warning. Checked: each server's version at each step (/v1/agent/self,
// the configuration, `node server members`, `node status`, /v1/agent/health), the cluster version
// committed on every server at the end, every acknowledged ledger key on every server, every server's
// state the same, the last acknowledged write of each register not lost, the history linearizable
// (test/nemesis/checker.ts), and no gap without a successful operation above an election's bound.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ELECTION_TICKS, TICK_MS } from "../../src/server/raft_start.ts";
import { Cluster, type ClusterServer, freePort, NotYet, waitFor, withLogs } from "../cluster/harness.ts";
import { checkHistory } from "../nemesis/checker.ts";
import { History, type Operation } from "../nemesis/history.ts";
import { lostWrites } from "../nemesis/nemesis.ts";
import { SeededRandom } from "../nemesis/seeded_random.ts";
import { Client, call, recordedRead, recordedWrite, VAR_PREFIX } from "../nemesis/workload.ts";
import { previousRelease, previousReleaseBinary } from "./previous_release.ts";

const cluster = new Cluster("rolling-upgrade");
const prev = previousRelease();
const CURRENT = (await Bun.file(new URL("../../package.json", import.meta.url)).json()).version as string;
const SEED = Number(process.env.ROLLING_SEED ?? 24);
const KEYS = ["k0", "k1", "k2"];
const CLIENTS = 4;
const LEDGER = "rolling-ledger/";
const SETUP_PROCESS = 999;
const FINAL_PROCESS = 2000;
/**
 * The longest a follower waits for a silent leader is its randomized election timeout at its
 * longest (2 × ELECTION_TICKS ticks); a graceful stop of the leader costs at most that, plus one more
 * for a split vote. The margin covers the client's side: a request in flight to the stopped server
 * fails, the client paces (≤ 25 ms) and its next request may wait for a follower to learn the leader.
 */
const ELECTION_MAX_MS = 2 * ELECTION_TICKS * TICK_MS;
const GAP_BOUND_MS = 2 * ELECTION_MAX_MS + 1_000;

let current = "";
let previousBinary = "";

interface Configuration {
  ClusterVersion?: string;
  Servers: { ID: string; Node: string; Voter: boolean; Leader: boolean; Version?: string }[];
}
interface Self {
  Version: string;
  ClusterVersion?: string;
  Stats: { raft: { applied_index: number | string; commit_index: number | string } };
}

async function self(s: ClusterServer): Promise<Self> {
  const r = await s.get<Self>("/v1/agent/self");
  if (r.status !== 200) throw new NotYet(`${s.name} /v1/agent/self: ${r.status}`);
  return r.body;
}

/** The configuration as `s` shows it (its own view with `stale`), once every version there is `want`. */
async function versionsShown(
  s: ClusterServer,
  want: Record<string, string>,
  clusterVersion: string,
  stale: boolean,
): Promise<Configuration> {
  let last = "";
  return waitFor(`${s.name} to show versions ${JSON.stringify(want)}, cluster version ${clusterVersion}`, 20_000, async () => {
    const r = await s.get<Configuration>(`/v1/operator/raft/configuration${stale ? "?stale" : ""}`);
    if (r.status !== 200) throw new NotYet(`${r.status} ${r.text.slice(0, 200)}`);
    const c = r.body;
    const shown = Object.fromEntries(c.Servers.map((x) => [x.Node, x.Version]).sort());
    last = JSON.stringify({ shown, ClusterVersion: c.ClusterVersion });
    return JSON.stringify(shown) === JSON.stringify(want) && c.ClusterVersion === clusterVersion ? c : undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}; last shown ${last}`);
  });
}

/** `node server members` through `s`: each server's Build column, by name (spawned, so clients run on). */
async function membersBuild(s: ClusterServer, stale: boolean): Promise<Record<string, string>> {
  const p = Bun.spawn([current, "server", "members", "-address", s.url, ...(stale ? ["-stale"] : [])], { stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`node server members via ${s.name}: exit ${code}: ${err}`);
  const [head, ...rows] = out.trim().split("\n");
  const cols = (head ?? "").trim().split(/\s+/);
  const build = cols.indexOf("Build");
  expect(build).toBeGreaterThan(0);
  return Object.fromEntries(rows.map((r) => r.trim().split(/\s+/)).map((c) => [c[0], c[build]]));
}

/** `node status` through `s`: its Cluster Version line. */
async function statusClusterVersion(s: ClusterServer, stale: boolean): Promise<string> {
  const p = Bun.spawn([current, "status", "-address", s.url, ...(stale ? ["-stale"] : [])], { stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`node status via ${s.name}: exit ${code}: ${err}`);
  return /^Cluster Version\s+=\s+(\S+)/m.exec(out)?.[1] ?? `no Cluster Version line in: ${out}`;
}

/** Writes ledger keys once each through random servers until `until`; returns the acknowledged ones. */
async function ledger(servers: readonly ClusterServer[], rng: SeededRandom, until: () => boolean): Promise<string[]> {
  const acked: string[] = [];
  for (let n = 0; !until(); n++) {
    const key = `${LEDGER}${n}`;
    const r = await call(rng.pick(servers), "PUT", `/v1/var/${key}`, { Items: { n: String(n) } });
    if (!("error" in r) && r.status === 200) acked.push(key);
    await Bun.sleep(rng.int(5, 30));
  }
  return acked;
}

/** The longest stretch of the run with no operation completing ok, and where it was. */
function longestGap(ops: readonly Operation[], from: number, to: number): { ms: number; at: number } {
  const done = ops
    .filter((o) => o.status === "ok" && o.completeAt >= from && o.completeAt <= to)
    .map((o) => o.completeAt)
    .sort((a, b) => a - b);
  let gap = { ms: 0, at: from };
  let prevAt = from;
  for (const t of [...done, to]) {
    if (t - prevAt > gap.ms) gap = { ms: t - prevAt, at: prevAt };
    prevAt = t;
  }
  return gap;
}

beforeAll(async () => {
  await cluster.init();
  current = cluster.binaryPath;
  previousBinary = await previousReleaseBinary();
  const ports = Array.from({ length: 3 }, () => ({ http: freePort(), rpc: freePort() }));
  const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
  for (const p of ports) cluster.add({ bootstrapExpect: 3, ports: p, join: all });
  for (const s of cluster.servers) s.binary = previousBinary;
  for (const s of cluster.servers) s.start();
  await Promise.all(cluster.servers.map((s) => s.waitHttp()));
}, 900_000);

afterAll(async () => {
  await cluster.cleanup();
});

describe("a rolling upgrade from the previous release", () => {
  test(
    "one server at a time, leader last, under reads, writes and CAS: versions shown at each step, a rollback before the raise, cluster version raised at the end, no acknowledged write lost, linearizable, no gap above an election; a rollback after the raise is warned of",
    () =>
      withLogs(cluster, async () => {
        const started = performance.now();
        const servers = cluster.servers;
        const names = servers.map((s) => s.name);
        const versions = Object.fromEntries(names.map((n) => [n, prev.version]));
        let leader = await cluster.waitForLeader(20_000);
        for (const s of servers) expect((await self(s)).Version).toBe(prev.version);

        const history = new History();
        for (const k of KEYS)
          await waitFor(`initial write of ${k}`, 20_000, async () => {
            return (await recordedWrite(history, SETUP_PROCESS, leader, k, `init-${k}`)).status === "ok";
          });
        const rng = new SeededRandom(SEED);
        const clients = Array.from(
          { length: CLIENTS },
          (_, i) => new Client(i, history, servers, KEYS, new SeededRandom(rng.int(1, 2 ** 31))),
        );
        let stop = false;
        const until = () => stop;
        const loadFrom = history.now();
        const running = clients.map((c) => c.run(until));
        const ledgerAcked = ledger(servers, new SeededRandom(rng.int(1, 2 ** 31)), until);
        const steps: string[] = [];
        /** Waits (a condition, not a sleep) until the clients completed `n` more operations ok: the cluster serves in this state. */
        const served = (n: number, where: string) => {
          const from = history.ops.filter((o) => o.status === "ok").length;
          return waitFor(`${n} more ok operations ${where}`, 20_000, () => history.ops.filter((o) => o.status === "ok").length >= from + n);
        };

        try {
          await served(100, "before the first restart");
          /** Stops `target` gracefully and starts it on `binary` (running `version`) with its data directory; checks what is shown. */
          const swap = async (target: ClusterServer, binary: string, version: string) => {
            await target.terminate();
            target.binary = binary;
            target.start();
            await target.waitHttp(20_000);
            versions[target.name] = version;

            // Caught up: it applied what the leader had committed once it was back.
            leader = await cluster.waitForLeader(20_000);
            const commit = Number((await self(leader)).Stats.raft.commit_index);
            await waitFor(`${target.name} to apply index ${commit}`, 20_000, async () => {
              return Number((await self(target)).Stats.raft.applied_index) >= commit;
            });

            // Healthy (it knows a leader), as the README has the operator check between steps.
            await waitFor(`${target.name} /v1/agent/health 200`, 20_000, async () => (await target.get("/v1/agent/health")).status === 200);
            // Every server shows its own version; the cluster version stays the previous release's until all run this one.
            for (const s of servers) expect(`${s.name} ${(await self(s)).Version}`).toBe(`${s.name} ${versions[s.name]}`);
            const upgraded = servers.filter((x) => versions[x.name] === CURRENT);
            const mixed = upgraded.length < servers.length;
            const clusterVersion = mixed ? prev.version : CURRENT;
            // While the leader runs the previous release (which shows no versions), an upgraded server's own view (-stale).
            for (const s of upgraded) await versionsShown(s, versions, clusterVersion, mixed);
            for (const s of upgraded.slice(0, 1)) {
              expect(await membersBuild(s, mixed)).toEqual(versions);
              expect(await statusClusterVersion(s, mixed)).toBe(clusterVersion);
              // Through a leader of the previous release (it learns no versions) every Build is unknown, as the README says.
              if (versions[leader.name] === prev.version)
                expect(await membersBuild(s, false)).toEqual(Object.fromEntries(names.map((n) => [n, "unknown"])));
            }
            await served(100, `after ${target.name} runs ${version}`);
          };

          // Rolling back before the cluster version is raised: the previous binary on the same data directory.
          leader = await cluster.waitForLeader(20_000);
          const first = servers.find((s) => s !== leader) as ClusterServer;
          steps.push(`${first.name} at ${Math.round(history.now())} ms`);
          await swap(first, current, CURRENT);
          steps.push(`${first.name} back to ${prev.version} at ${Math.round(history.now())} ms`);
          await swap(first, previousBinary, prev.version);

          for (let step = 0; step < servers.length; step++) {
            leader = await cluster.waitForLeader(20_000);
            // Leader last: a server still on the previous release that is not the leader, while there is one.
            const old = servers.filter((s) => versions[s.name] === prev.version);
            const target = old.find((s) => s !== leader) ?? leader;
            steps.push(`${target.name}${target === leader ? " (leader)" : ""} at ${Math.round(history.now())} ms`);
            expect(target === leader).toBe(old.length === 1 && old[0] === leader);
            await swap(target, current, CURRENT);
          }
          // The committed cluster version reaches every server through the log.
          for (const s of servers)
            await waitFor(`${s.name} to apply cluster version ${CURRENT}`, 20_000, async () => (await self(s)).ClusterVersion === CURRENT);
        } finally {
          stop = true;
          await Promise.all(running);
        }
        const loadTo = history.now();
        const acked = await ledgerAcked;
        expect(steps.at(-1)).toContain("(leader)");

        // Final linearizable reads join the history; every server then holds the same state.
        leader = await cluster.waitForLeader(20_000);
        const finals = new Map<string, Operation>();
        for (const k of KEYS)
          await waitFor(`final read of ${k}`, 20_000, async () => {
            const r = await recordedRead(history, FINAL_PROCESS, leader, k);
            if (r) finals.set(k, history.ops.at(-1) as Operation);
            return r !== undefined;
          });
        const commit = Number((await self(leader)).Stats.raft.commit_index);
        for (const s of servers)
          await waitFor(
            `${s.name} to apply index ${commit}`,
            20_000,
            async () => Number((await self(s)).Stats.raft.applied_index) >= commit,
          );
        for (const s of servers) {
          for (const k of KEYS) {
            const r = await call(s, "GET", `/v1/var/${VAR_PREFIX}${k}?stale`);
            expect(`${s.name} ${k}: ${"error" in r ? r.error : r.body?.Items?.v}`).toBe(`${s.name} ${k}: ${finals.get(k)?.output}`);
          }
          const missing: string[] = [];
          for (let i = 0; i < acked.length; i += 50)
            await Promise.all(
              acked.slice(i, i + 50).map(async (key) => {
                const r = await call(s, "GET", `/v1/var/${key}?stale`);
                if ("error" in r || r.status !== 200 || r.body?.Items?.n !== key.slice(LEDGER.length)) missing.push(key);
              }),
            );
          expect(`${s.name} misses ${missing.length} of ${acked.length} acknowledged ledger keys: ${missing.slice(0, 10).join(", ")}`).toBe(
            `${s.name} misses 0 of ${acked.length} acknowledged ledger keys: `,
          );
        }
        const lost: string[] = [];
        lostWrites(history.finished(), finals, lost);
        expect(lost).toEqual([]);

        const check = checkHistory(history.finished(), { timeoutMs: 30_000 });
        expect(check.keys.map((k) => `${k.key}: ${k.verdict}${k.explanation ? ` — ${k.explanation}` : ""}`)).toEqual(
          KEYS.map((k) => `${k}: ok`),
        );

        const gap = longestGap(history.finished(), loadFrom, loadTo);
        const okOps = history.finished().filter((o) => o.status === "ok").length;
        console.log(
          `rolling upgrade: order ${steps.join(", ")}; ${okOps} ok operations of ${history.ops.length}, ${acked.length} ledger keys; longest gap ${Math.round(gap.ms)} ms at ${Math.round(gap.at)} ms (bound ${GAP_BOUND_MS}); ${Math.round((performance.now() - started) / 1000)} s`,
        );
        expect(acked.length).toBeGreaterThan(50);
        expect(gap.ms).toBeLessThan(GAP_BOUND_MS);

        // After the raise the previous release cannot apply what the cluster writes: a server rolled back to
        // it is named by the leader's warning (README: roll back only before the last server is upgraded).
        leader = await cluster.waitForLeader(20_000);
        const back = servers.find((s) => s !== leader) as ClusterServer;
        await back.terminate();
        back.binary = previousBinary;
        back.start();
        await waitFor("the leader to warn of a server below the cluster version", 20_000, () =>
          leader.tail(200).includes(`a server runs ${prev.version}, below the committed cluster version ${CURRENT}`),
        );
      }),
    120_000,
  );
});
