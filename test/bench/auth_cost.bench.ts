// What session authentication (the cluster key) and the strict CBOR decoder cost: PUT throughput at 64
// clients and restore throughput of binary B against binary A in the same run. Each binary runs as a
// 3-server loopback cluster configured the way the README says: with `server { encrypt }` from its own
// `operator keygen`, or without a key when the binary has no keygen (a build from before the key).
// Rounds alternate A B A B: PUT with wrk + cluster_load.lua at 64 connections to the leader, then
// restore with `curl -T FILE` through a follower until the 200 (file MB / seconds). Before every
// measurement both clusters are idle (their servers' CPU below a bound), so a round does not pay for
// the previous one's background work (followers' builds, raft snapshots).
// Run: EDGENODE_BENCH_A=/tmp/edgenode-base EDGENODE_BENCH_B=build/node bun test/bench/auth_cost.bench.ts
// EDGENODE_BENCH_KEY_A / _B = 0 runs that binary without a key even if it has keygen (to part the key's
// cost from the rest). (A defaults to /tmp/edgenode-base: `git worktree add --detach /tmp/base ac7049d`, node_modules as this
// tree's, `bun run build` there, copy build/node; B to build/node. BENCH_SECONDS=4 per PUT round,
// BENCH_ROUNDS=5 PUT rounds, BENCH_CLIENTS=64 connections, RESTORE_ROUNDS=5 (0: PUT only), EDGENODE_BENCH_VARS=50000 variables of ~1 KB in the file.)
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Cluster, waitFor } from "../cluster/harness.ts";
import { getItems, writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";
import { machineCpu, median, procCpu, which, wrk, type Point } from "./wrk.ts";

const ROOT = join(import.meta.dir, "..", "..");
const A = process.env.EDGENODE_BENCH_A ?? "/tmp/edgenode-base";
const B = process.env.EDGENODE_BENCH_B ?? join(ROOT, "build", "node");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const PUT_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const RESTORE_ROUNDS = Number(process.env.RESTORE_ROUNDS ?? 5);
const VARS = Number(process.env.EDGENODE_BENCH_VARS ?? 50_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);
const GOAL = 0.95;
/** Both clusters count as idle when their six servers use less than this many cores over a second. */
const IDLE_CORES = 0.15;
const MB = 1e6;

interface System {
  label: "A" | "B";
  binary: string;
  version: string;
  keyed: boolean;
  cluster: Cluster;
  put: Point[];
  restoreMbps: number[];
  restoreCpuS: number[];
}

/** A binary that has `operator keygen` takes a cluster key, as the README configures it. */
function hasKeygen(binary: string): boolean {
  return Bun.spawnSync([binary, "operator", "keygen"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

function version(binary: string): string {
  const out = Bun.spawnSync([binary, "version"], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  return /Git commit:\s*(\S+)/.exec(out)?.[1] ?? out.trim();
}

function machine(): string {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  return `${navigator.hardwareConcurrency ?? cpus().length} × ${model}, ${process.platform}/${process.arch}, Bun ${Bun.version}`;
}

function pids(systems: System[]): number[] {
  return systems.flatMap((s) => s.cluster.servers.flatMap((x) => (x.proc?.pid ? [x.proc.pid] : [])));
}

/** Waits until the servers of every system together use less than IDLE_CORES over a one-second window. */
async function idle(systems: System[]): Promise<void> {
  const ps = pids(systems);
  await waitFor(
    "both clusters idle",
    180_000,
    async () => {
      const c0 = ps.reduce((a, p) => a + procCpu(p), 0);
      const m0 = machineCpu();
      await Bun.sleep(1000);
      const cores = (ps.reduce((a, p) => a + procCpu(p), 0) - c0) / ((machineCpu().total - m0.total) / cpus().length);
      return cores < IDLE_CORES;
    },
    0,
  );
}

async function start(label: "A" | "B", binary: string): Promise<System> {
  if (!existsSync(binary)) throw new Error(`binary ${label} not found at ${binary} (set EDGENODE_BENCH_${label})`);
  const keyed = process.env[`EDGENODE_BENCH_KEY_${label}`] !== "0" && hasKeygen(binary);
  const cluster = new Cluster(`auth-cost-${label}`);
  await cluster.init({ binary, keyed });
  await cluster.startServers(3, { logLevel: "WARN" });
  await cluster.waitForLeader(20_000);
  if (keyed && !readFileSync(cluster.servers[0]!.configPath, "utf8").includes("encrypt = "))
    throw new Error(`${label}: no key in the config`);
  return { label, binary, version: version(binary), keyed, cluster, put: [], restoreMbps: [], restoreCpuS: [] };
}

/** `curl -T file` through a follower until the 200; file MB/s, and the servers' CPU seconds meanwhile. */
async function restore(s: System, file: string): Promise<{ mbps: number; cpuS: number }> {
  const leader = await s.cluster.waitForLeader(30_000);
  const follower = s.cluster.followers(leader)[0]!;
  // The marker changes before each restore, so that "every server serves the file's state" is observable.
  await leader.putVar("marker/state", { tag: "before" });
  const ps = s.cluster.servers.map((x) => x.proc?.pid ?? 0);
  const cpu0 = ps.reduce((a, p) => a + procCpu(p), 0);
  const t0 = performance.now();
  const p = Bun.spawn(
    ["curl", "-sS", "--max-time", "600", "-o", "/dev/null", "-w", "%{http_code}", "-T", file, `${follower.url}/v1/operator/snapshot`],
    { stdout: "pipe", stderr: "pipe" },
  );
  const code = (await new Response(p.stdout).text()).trim();
  await p.exited;
  const ms = performance.now() - t0;
  const cpuS = ps.reduce((a, p) => a + procCpu(p), 0) - cpu0;
  if (code !== "200") throw new Error(`${s.label}: restore answered ${code}: ${await new Response(p.stderr).text()}`);
  for (const x of s.cluster.servers)
    await waitFor(
      `${s.label} ${x.name} serving the restored state`,
      300_000,
      async () => (await getItems(x, "marker/state"))?.tag === "bench",
      200,
    );
  return { mbps: statSync(file).size / MB / (ms / 1000), cpuS };
}

/** Median of the per-round ratios b[i]/a[i]: each pair ran back to back, so a load drift cancels. */
const paired = (a: number[], b: number[]) => median(a.map((x, i) => b[i]! / x));
const spread = (xs: number[], d = 0) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;

async function main(): Promise<void> {
  if (!which("wrk")) throw new Error("wrk is not installed (apt-get install -y wrk)");
  if (!which("curl")) throw new Error("curl is not installed (apt-get install -y curl)");
  const date = new Date().toISOString();
  const systems: System[] = [];
  let file = "";
  try {
    systems.push(await start("A", A), await start("B", B));
    const [a, b] = systems as [System, System];
    console.error(`A ${a.version} (${a.keyed ? "cluster key" : "no key"}), B ${b.version} (${b.keyed ? "cluster key" : "no key"})`);
    file = join(b.cluster.dir, "restore.snap");
    const w = await writeVarsSnapshot(file, "bench", VARS, 1000, 5);
    console.error(`snapshot file: ${(w.size / MB).toFixed(1)} MB, ${VARS} variables`);

    // Warm-up (discarded): JIT, connections, the first raft snapshots.
    for (const s of systems)
      await wrk((await s.cluster.waitForLeader()).url, { TARGET: "edgenode", OP: "put", TAG: "99" }, 16, 2, pids([s]));
    for (let r = 0; r < PUT_ROUNDS; r++) {
      for (const [i, s] of systems.entries()) {
        await idle(systems);
        const leader = await s.cluster.waitForLeader(30_000);
        const p = await wrk(leader.url, { TARGET: "edgenode", OP: "put", TAG: String(r * 2 + i) }, CLIENTS, SECONDS, pids([s]));
        if (p.errors > 0) throw new Error(`${s.label} PUT round ${r + 1}: ${p.errors} errors`);
        s.put.push(p);
        console.error(
          `${s.label} PUT c=${CLIENTS} round ${r + 1}: ${Math.round(p.rps)} req/s, p99 ${p.p99.toFixed(1)} ms, ${Math.round(p.cpuUsPerOp)} µs CPU/op, other ${p.otherCores.toFixed(2)} cores`,
        );
      }
    }
    for (let r = 0; r < RESTORE_ROUNDS; r++) {
      for (const s of systems) {
        await idle(systems);
        const x = await restore(s, file);
        s.restoreMbps.push(x.mbps);
        s.restoreCpuS.push(x.cpuS);
        console.error(`${s.label} restore round ${r + 1}: ${x.mbps.toFixed(1)} MB/s, servers' CPU ${x.cpuS.toFixed(2)} s`);
      }
    }

    const putA = median(a.put.map((p) => p.rps)),
      putB = median(b.put.map((p) => p.rps));
    const resA = median(a.restoreMbps),
      resB = median(b.restoreMbps);
    const verdict = (x: number) => `${x.toFixed(3)} ${x >= GOAL ? "(meets ≥ 0.95)" : "(**misses ≥ 0.95**)"}`;
    console.log(`\n### Cost of session authentication and the strict decoder: B against A, same run, alternating\n`);
    console.log(
      `Machine ${machine()}, load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")} at the end; ${date}.`,
    );
    console.log(
      `A = ${a.version} (${a.keyed ? "cluster key" : "no cluster key"}), B = ${b.version} (${b.keyed ? "cluster key" : "no cluster key"}); restore file ${(w.size / MB).toFixed(1)} MB (${VARS} variables of ~1 KB).\n`,
    );
    console.log("| figure | A median (min–max) | B median (min–max) | B/A of medians | median of round ratios B/A |");
    console.log("|---|---:|---:|---|---:|");
    console.log(
      `| PUT req/s, ${CLIENTS} clients, ${PUT_ROUNDS} rounds of ${SECONDS} s | ${spread(a.put.map((p) => p.rps))} | ${spread(b.put.map((p) => p.rps))} | ${verdict(putB / putA)} | ${paired(
        a.put.map((p) => p.rps),
        b.put.map((p) => p.rps),
      ).toFixed(3)} |`,
    );
    console.log(
      `| PUT servers' CPU µs/op | ${spread(a.put.map((p) => p.cpuUsPerOp))} | ${spread(b.put.map((p) => p.cpuUsPerOp))} | ${(median(b.put.map((p) => p.cpuUsPerOp)) / median(a.put.map((p) => p.cpuUsPerOp))).toFixed(3)} | ${paired(
        a.put.map((p) => p.cpuUsPerOp),
        b.put.map((p) => p.cpuUsPerOp),
      ).toFixed(3)} |`,
    );
    console.log(
      `| PUT p99 ms | ${spread(
        a.put.map((p) => p.p99),
        1,
      )} | ${spread(
        b.put.map((p) => p.p99),
        1,
      )} | — | — |`,
    );
    console.log(
      `| PUT other cores busy | ${spread(
        a.put.map((p) => p.otherCores),
        2,
      )} | ${spread(
        b.put.map((p) => p.otherCores),
        2,
      )} | — | — |`,
    );
    if (RESTORE_ROUNDS > 0)
      console.log(
        `| restore MB/s (curl -T via a follower → 200), ${RESTORE_ROUNDS} rounds | ${spread(a.restoreMbps, 1)} | ${spread(b.restoreMbps, 1)} | ${verdict(resB / resA)} | ${paired(a.restoreMbps, b.restoreMbps).toFixed(3)} |`,
      );
    if (RESTORE_ROUNDS > 0)
      console.log(
        `| restore servers' CPU s | ${spread(a.restoreCpuS, 2)} | ${spread(b.restoreCpuS, 2)} | ${(median(b.restoreCpuS) / median(a.restoreCpuS)).toFixed(3)} | ${paired(a.restoreCpuS, b.restoreCpuS).toFixed(3)} |`,
      );
  } catch (e) {
    for (const s of systems) {
      console.error(`${s.label}: logs in ${s.cluster.dir}\n${s.cluster.tails(20)}`);
      s.cluster.keep = true;
    }
    throw e;
  } finally {
    if (file) rmSync(file, { force: true });
    await Promise.all(systems.map((s) => s.cluster.cleanup()));
  }
}

await main();
