// Issue #23's comparison: snapshot restore and save on a 3-server edgenode cluster against the
// hashicorp/raft anchor (shared/anchors/hraft, Nomad's restore mechanism) holding the same number of
// variables of ~1 KB, both clusters up in the same run, the systems alternating in each round; etcd 3.4's
// `etcdctl snapshot save` beside them when etcd is installed (etcd restores offline only).
// Per system and round: save (`curl -o FILE` + `sync FILE`; edgenode through a follower, hraft on the
// leader), restore until the 200 (`curl -T`; edgenode through a follower, hraft to the leader, as each
// one's operator would), restore until every server serves the new state (each server polled, stale, for
// a marker variable that was overwritten just before the restore), each server's peak RSS during the
// restore (VmHWM reset before it, plus sampled VmRSS) and CPU seconds (/proc utime + stime) until every
// server serves it and until all are quiet again. Then the ratios edgenode/hraft the issue's goals use.
// Run: bun test/bench/restore_vs_hraft.bench.ts   (100k variables; EDGENODE_BENCH_FULL=1 for 1M;
// EDGENODE_BENCH_VARS=N; EDGENODE_BENCH_RUNS=N rounds, default 3)
// EDGENODE_BENCH_HRAFT=1 requires the anchor: the bench fails when it cannot be built (Debian's
// golang-go, golang-github-hashicorp-raft-dev, golang-github-hashicorp-raft-boltdb-dev missing); unset,
// it says why and skips hraft's rows, exiting 0 as for a missing etcd; =0 skips it.
// EDGENODE_BENCH_A=<binary> adds a second edgenode cluster running that binary (a baseline, "edgenode A")
// in the same rounds, alternating with the others; EDGENODE_BENCH_B=<binary> runs "edgenode" from that
// binary instead of build/node. An A/B table of the two then follows.
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Cluster, type ClusterServer, waitFor } from "../cluster/harness.ts";
import { getItems, startCluster, textPool, writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";
import { etcdSnapshotRuns } from "./etcd_snapshot.ts";
import { buildHraft, HraftCluster, type HraftNode } from "./hraft.ts";
import { waitQuiet, watch } from "./proc_stats.ts";

const FULL = process.env.EDGENODE_BENCH_FULL === "1";
const VARS = Number(process.env.EDGENODE_BENCH_VARS ?? (FULL ? 1_000_000 : 100_000));
const VALUE = 1000;
const RUNS = Math.max(3, Number(process.env.EDGENODE_BENCH_RUNS ?? 3));
const HRAFT = process.env.EDGENODE_BENCH_HRAFT ?? "auto";
const BIN_A = process.env.EDGENODE_BENCH_A || undefined;
const BIN_B = process.env.EDGENODE_BENCH_B || undefined;
/** Bound on any one step (a restore, the wait for every server, a save); the 1M case gets more. */
const STEP_MS = FULL ? 1_200_000 : 300_000;
const MB = 1e6;
const MIB = 1048576;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "—");
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "—");

/** One round's figures for one system; per-server arrays are in role order (see `roles`). */
interface Round {
  saveMs: number;
  saveBytes: number;
  restoreMs: number;
  allMs: number;
  peak: number[];
  cpuAll: number[];
  cpuQuiet: number[];
  quiet: boolean;
}

async function curl(args: string[], what: string): Promise<void> {
  const p = Bun.spawn(["curl", "-sS", "-f", "--max-time", String(STEP_MS / 1000), ...args], { stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`${what}: ${await new Response(p.stderr).text()}`);
}

/** `curl -o file` then `sync file`, timed; returns ms and bytes. */
async function curlSave(url: string, file: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  await curl(["-o", file, url], `save ${url}`);
  const sy = Bun.spawn(["sync", file], { stdout: "ignore", stderr: "pipe" });
  if ((await sy.exited) !== 0) throw new Error(`sync: ${await new Response(sy.stderr).text()}`);
  const ms = performance.now() - t0;
  const bytes = statSync(file).size;
  rmSync(file);
  return { ms, bytes };
}

/** A system under test: how to set a marker, restore the file, tell that a server serves it, save. */
interface System {
  name: string;
  roles: string;
  /** The servers' pids in role order, and where to send the restore and the save. */
  place(): Promise<{ pids: number[]; restoreUrl: string; saveUrl: string; servers: (() => Promise<boolean>)[] }>;
  premark(run: number): Promise<void>;
  input: string;
  settle(): Promise<void>;
}

async function measure(sys: System, run: number, dir: string): Promise<Round> {
  await sys.premark(run);
  const at = await sys.place();
  // Every server shows the overwritten marker before the clock starts, so "serves the new state" is the restore's doing.
  for (const [i, serves] of at.servers.entries())
    await waitFor(`${sys.name} server ${i} to show the marker overwritten`, 30_000, async () => !(await serves()) || undefined, 50);
  const w = watch(at.pids);
  const t0 = performance.now();
  await curl(["-T", sys.input, "-o", "/dev/null", at.restoreUrl], `${sys.name} restore`);
  const restoreMs = performance.now() - t0;
  await Promise.all(
    at.servers.map((serves, i) => waitFor(`${sys.name} server ${i} to serve the restored state`, STEP_MS, () => serves(), 20)),
  );
  const allMs = performance.now() - t0;
  const cpuAll = w.cpu();
  const quiet = await waitQuiet(at.pids, 60_000);
  const { cpu: cpuQuiet, peak } = w.stop();
  await sys.settle();
  const save = await curlSave(at.saveUrl, join(dir, `save-${sys.name}-${run}`));
  return { saveMs: save.ms, saveBytes: save.bytes, restoreMs, allMs, peak, cpuAll, cpuQuiet, quiet };
}

// ---- edgenode: the compiled binary, restore and save through a follower ----

function edgeSystem(cluster: Cluster, input: string, name = "edgenode"): System {
  const marker = async (s: ClusterServer) => (await getItems(s, "marker/state"))?.tag;
  return {
    name,
    roles: "leader / follower taking the upload / other follower",
    input,
    async premark(run) {
      const leader = await cluster.waitForLeader(30_000);
      await leader.putVar("marker/state", { tag: `before-${run}` });
    },
    async place() {
      const leader = await cluster.waitForLeader(30_000);
      const [a, b] = cluster.followers(leader) as [ClusterServer, ClusterServer];
      const order = [leader, a, b];
      return {
        pids: order.map((s) => s.proc!.pid),
        restoreUrl: `${a.url}/v1/operator/snapshot`,
        saveUrl: `${a.url}/v1/operator/snapshot`,
        servers: order.map((s) => async () => (await marker(s)) === "bench"),
      };
    },
    // A large restore may be followed by an election: the save waits for a settled leader.
    async settle() {
      await cluster.waitForLeader(30_000);
    },
  };
}

// ---- hraft: restore and save on the leader (a follower answers 307) ----

function hraftSystem(h: HraftCluster, input: string): System {
  let leader: HraftNode | undefined;
  return {
    name: "hraft",
    roles: "leader / follower / follower",
    input,
    async premark(run) {
      leader = await h.waitForLeader(30_000);
      await h.put(leader, "marker", `before-${run}`);
    },
    async place() {
      leader = await h.waitForLeader(30_000);
      const order = [leader, ...h.nodes.filter((n) => n !== leader)];
      return {
        pids: order.map((n) => n.pid),
        restoreUrl: `${leader.url}/v1/operator/snapshot`,
        saveUrl: `${leader.url}/v1/operator/snapshot`,
        servers: order.map((n) => async () => (await h.getStale(n, "marker")) === "snapshot"),
      };
    },
    async settle() {
      await h.waitForLeader(30_000);
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), "edgenode-bench-hraft-"));
let cluster: Cluster | undefined;
let clusterA: Cluster | undefined;
let hraft: HraftCluster | undefined;
let failed = false;
const stopAll = async () => {
  await hraft?.stop();
  await cluster?.cleanup();
  await clusterA?.cleanup();
};
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => {
    void stopAll().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });

try {
  // hraft first: whether it is there decides the bench's shape.
  let hraftNote = "";
  if (HRAFT !== "0") {
    const built = await buildHraft();
    if ("unavailable" in built) {
      if (HRAFT === "1") throw new Error(`EDGENODE_BENCH_HRAFT=1 but the hashicorp/raft anchor cannot be built: ${built.unavailable}`);
      hraftNote = `hashicorp/raft anchor skipped: ${built.unavailable}`;
      console.error(hraftNote);
    } else {
      mkdirSync(join(dir, "hraft"));
      hraft = new HraftCluster(built.binary, join(dir, "hraft"));
      await hraft.start();
    }
  } else hraftNote = "hashicorp/raft anchor skipped: EDGENODE_BENCH_HRAFT=0";

  const t00 = performance.now();
  cluster = await startCluster("hraft-bench", { logLevel: "WARN", ...(BIN_B ? { binary: BIN_B } : {}) });
  const edgeInput = join(dir, "edge.snap");
  const w = await writeVarsSnapshot(edgeInput, "bench", VARS, VALUE, 5);
  console.error(
    `edgenode: ${VARS} vars, ${(w.size / MB).toFixed(1)} MB snapshot file in ${((performance.now() - t00) / 1000).toFixed(1)} s`,
  );
  const systems: System[] = [edgeSystem(cluster, edgeInput)];
  if (hraft) {
    const t0 = performance.now();
    const leader = await hraft.waitForLeader(30_000);
    await hraft.load(leader, VARS, VALUE, "bench/k", STEP_MS);
    await hraft.put(leader, "marker", "snapshot");
    const hraftInput = join(dir, "hraft.snap");
    await curl(["-o", hraftInput, `${leader.url}/v1/operator/snapshot`], "hraft first save");
    console.error(
      `hraft: ${VARS} vars loaded and saved (${(statSync(hraftInput).size / MB).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    systems.push(hraftSystem(hraft, hraftInput));
  }
  if (BIN_A) {
    clusterA = await startCluster("hraft-bench-a", { logLevel: "WARN", binary: BIN_A });
    systems.push(edgeSystem(clusterA, edgeInput, "edgenode A"));
  }

  const rounds = new Map<string, Round[]>(systems.map((s) => [s.name, []]));
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? systems : [...systems].reverse();
    for (const sys of order) {
      const r = await measure(sys, run, dir);
      rounds.get(sys.name)!.push(r);
      console.error(
        `round ${run + 1} ${sys.name}: restore ${f2(r.restoreMs / 1000)} s, all serving ${f2(r.allMs / 1000)} s, save ${f2(r.saveMs / 1000)} s; peak ${r.peak.map((b) => f0(b / MIB)).join("/")} MiB; CPU ${r.cpuAll.map(f2).join("/")} s (quiet ${r.cpuQuiet.map(f2).join("/")}${r.quiet ? "" : ", not quiet after 60 s"})`,
      );
    }
  }

  // etcd last, with the other clusters stopped: it is loaded the same way snapshot_cluster.bench.ts loads it.
  await hraft?.stop();
  hraft = undefined;
  await cluster.cleanup();
  cluster = undefined;
  await clusterA?.cleanup();
  clusterA = undefined;
  const etcdDir = join(dir, "etcd");
  mkdirSync(etcdDir);
  let etcd: Awaited<ReturnType<typeof etcdSnapshotRuns>>;
  try {
    etcd = await etcdSnapshotRuns(etcdDir, textPool(5), { vars: VARS, value: VALUE, runs: RUNS });
  } catch (e) {
    etcd = `etcd failed: ${(e as Error).message}`;
  }

  const med = (name: string, pick: (r: Round) => number) => median((rounds.get(name) ?? []).map(pick));
  const perServer = (name: string, pick: (r: Round) => number[]) =>
    rounds.has(name) ? [0, 1, 2].map((i) => med(name, (r) => pick(r)[i]!)) : [];
  const has = rounds.has("hraft");
  const ratio = (a: number, b: number) => (has ? `${f2(a / b)}×` : "—");
  const sumCpu = (name: string, pick: (r: Round) => number[]) => med(name, (r) => pick(r).reduce((x, y) => x + y, 0));
  const cell = (name: string, f: () => string) => (rounds.has(name) ? f() : "—");
  const secs = (name: string, pick: (r: Round) => number) => cell(name, () => f2(med(name, pick) / 1000));
  const etcdSave = typeof etcd === "string" ? `— (${etcd})` : `${f2(median(etcd.ms) / 1000)} (${f0(etcd.size / MB)} MB)`;

  console.log(
    `\n### Restore and save, edgenode against hashicorp/raft 1.1.2 (3 servers each, ${VARS} variables of ~${VALUE} B, medians of ${RUNS} alternating rounds)\n`,
  );
  console.log("| measure | edgenode | hraft | etcd 3.4 | edgenode / hraft | goal |");
  console.log("|---|---:|---:|---:|---:|---|");
  console.log(
    `| save, \`curl -o\` + \`sync\`, s (file) | ${f2(med("edgenode", (r) => r.saveMs) / 1000)} (${f0(med("edgenode", (r) => r.saveBytes) / MB)} MB) | ${cell("hraft", () => `${f2(med("hraft", (r) => r.saveMs) / 1000)} (${f0(med("hraft", (r) => r.saveBytes) / MB)} MB)`)} | ${etcdSave} | ${ratio(
      med("edgenode", (r) => r.saveMs),
      med("hraft", (r) => r.saveMs),
    )} | — |`,
  );
  if (typeof etcd !== "string")
    console.log(
      `| save vs etcd (etcd s / edgenode s, same variables) | ${f2(median(etcd.ms) / med("edgenode", (r) => r.saveMs))}× | ${cell("hraft", () => `${f2(median(etcd.ms) / med("hraft", (r) => r.saveMs))}×`)} | 1× | — | edgenode ≥ 2× |`,
    );
  const restoreRatio = ratio(
    med("edgenode", (r) => r.restoreMs),
    med("hraft", (r) => r.restoreMs),
  );
  console.log(
    `| restore until the 200, s | ${secs("edgenode", (r) => r.restoreMs)} | ${secs("hraft", (r) => r.restoreMs)} | offline only | ${restoreRatio} | ≤ 0.60× |`,
  );
  const allRatio = ratio(
    med("edgenode", (r) => r.allMs),
    med("hraft", (r) => r.allMs),
  );
  console.log(
    `| restore until every server serves it, s | ${secs("edgenode", (r) => r.allMs)} | ${secs("hraft", (r) => r.allMs)} | — | ${allRatio} | ≤ 0.50× |`,
  );
  const mib = (xs: number[]) => xs.map((b) => f0(b / MIB)).join(" / ");
  const edgePeak = perServer("edgenode", (r) => r.peak);
  const hraftPeak = perServer("hraft", (r) => r.peak);
  console.log(
    `| peak RSS during the restore, MiB per server | ${mib(edgePeak)} | ${cell("hraft", () => mib(hraftPeak))} | — | ${ratio(Math.max(...edgePeak), Math.max(...hraftPeak))} (largest / largest) | ≤ 1.00× |`,
  );
  const cpuCell = (name: string, pick: (r: Round) => number[]) =>
    cell(name, () => `${perServer(name, pick).map(f2).join(" / ")} (Σ ${f2(sumCpu(name, pick))})`);
  console.log(
    `| CPU s per restore, until every server serves it, per server | ${cpuCell("edgenode", (r) => r.cpuAll)} | ${cpuCell("hraft", (r) => r.cpuAll)} | — | ${ratio(
      sumCpu("edgenode", (r) => r.cpuAll),
      sumCpu("hraft", (r) => r.cpuAll),
    )} (Σ) | — |`,
  );
  console.log(
    `| CPU s per restore, until all are quiet, per server | ${cpuCell("edgenode", (r) => r.cpuQuiet)} | ${cpuCell("hraft", (r) => r.cpuQuiet)} | — | ${ratio(
      sumCpu("edgenode", (r) => r.cpuQuiet),
      sumCpu("hraft", (r) => r.cpuQuiet),
    )} (Σ) | — |`,
  );
  console.log(
    `\nServers in role order: edgenode ${systems[0]!.roles}; hraft ${systems.find((x) => x.name === "hraft")?.roles ?? "(not run)"}. Quiet: no server above 0.05 CPU-s in 500 ms (at most 60 s).`,
  );
  if (hraftNote) console.log(hraftNote);
  if (rounds.has("edgenode A")) {
    const ab = (pick: (r: Round) => number) => `${f2(med("edgenode", pick) / med("edgenode A", pick))}×`;
    console.log(`\nA: ${BIN_A}; B: ${BIN_B ?? "build/node"} (B / A: below 1 is faster or less)\n`);
    console.log("| measure | A | B | B / A |");
    console.log("|---|---:|---:|---:|");
    for (const [what, pick] of [
      ["restore until the 200, s", (r: Round) => r.restoreMs],
      ["restore until every server serves it, s", (r: Round) => r.allMs],
    ] as const)
      console.log(`| ${what} | ${secs("edgenode A", pick)} | ${secs("edgenode", pick)} | ${ab(pick)} |`);
    for (const [what, pick] of [
      ["CPU s until every server serves it, per server", (r: Round) => r.cpuAll],
      ["CPU s until all are quiet, per server", (r: Round) => r.cpuQuiet],
      ["peak RSS MiB, per server", (r: Round) => r.peak.map((b) => b / MIB)],
    ] as const) {
      const a = perServer("edgenode A", pick);
      const b = perServer("edgenode", pick);
      const sa = a.reduce((x, y) => x + y, 0);
      const sb = b.reduce((x, y) => x + y, 0);
      console.log(`| ${what} | ${a.map(f2).join(" / ")} (Σ ${f2(sa)}) | ${b.map(f2).join(" / ")} (Σ ${f2(sb)}) | ${f2(sb / sa)}× (Σ) |`);
    }
  }
  console.log("\n| round | system | save s | restore to 200 s | all serving s | peak RSS MiB | CPU s to all serving | CPU s to quiet |");
  console.log("|---:|---|---:|---:|---:|---|---|---|");
  for (let run = 0; run < RUNS; run++)
    for (const sys of systems) {
      const r = rounds.get(sys.name)![run]!;
      console.log(
        `| ${run + 1} | ${sys.name} | ${f2(r.saveMs / 1000)} | ${f2(r.restoreMs / 1000)} | ${f2(r.allMs / 1000)} | ${mib(r.peak)} | ${r.cpuAll.map(f2).join(" / ")} | ${r.cpuQuiet.map(f2).join(" / ")}${r.quiet ? "" : " (not quiet)"} |`,
      );
    }
} catch (e) {
  failed = true;
  if (cluster) console.error(cluster.tails(40));
  if (hraft) console.error(hraft.tails(40));
  if (cluster) cluster.keep = true;
  if (clusterA) clusterA.keep = true;
  console.error(`bench failed; files in ${dir}`);
  throw e;
} finally {
  await stopAll();
  if (!failed) rmSync(dir, { recursive: true, force: true });
}
