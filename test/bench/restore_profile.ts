// Where a real restore's CPU goes on each server: a 3-server cluster of the compiled binary run under
// Bun's sampling profiler (BUN_OPTIONS=--cpu-prof), the restore uploaded through a follower as
// restore_vs_hraft.bench.ts does, then per role (leader / follower taking the upload / other follower):
// the process's CPU seconds from /proc split by thread (the JS thread, GC helpers, Bun's thread pool),
// and the JS thread's sampled self time by function, over the window from the upload's start until
// every server is quiet again. Round 1 (a restore over an empty state, cold code) is left out.
// Run: bun test/bench/restore_profile.ts   (EDGENODE_BENCH_VARS=N, default 100000; EDGENODE_BENCH_RUNS=N
// rounds counted, default 3; EDGENODE_BENCH_PERF_G=1 adds call chains, so CPU split by syscall and page fault;
// EDGENODE_BENCH_CPUPROF=1 adds Bun's sampler; EDGENODE_BENCH_TOP=N symbols listed; EDGENODE_BENCH_KEEP=1 keeps the files)
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Cluster, type ClusterServer, waitFor } from "../cluster/harness.ts";
import { getItems, startCluster, writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";
import { cpuSeconds, waitQuiet } from "./proc_stats.ts";

const VARS = Number(process.env.EDGENODE_BENCH_VARS ?? 100_000);
const RUNS = Number(process.env.EDGENODE_BENCH_RUNS ?? 3);
const TOP = Number(process.env.EDGENODE_BENCH_TOP ?? 30);
const ROLES = ["leader", "relaying follower", "other follower"] as const;
const TICKS = 100;
/** Bun's sampler (JS functions by name, but it inflates the CPU and counts time blocked in native calls). */
const CPUPROF = process.env.EDGENODE_BENCH_CPUPROF === "1";
/** perf's sampling period in ns of CPU: each sample stands for this much CPU time. */
const PERF_NS = 250_000;
/** perf with call chains: CPU split by syscall and page fault. */
const PERF_G = process.env.EDGENODE_BENCH_PERF_G === "1";
/** Bun's default sampling interval, µs. */
const PROF_US = 1000;

/** CPU seconds per thread name (Bun names its threads: "bun", "HeapHelper", "Bun Pool N", ...). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat
        .slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
        .replace(/\d+$/, "#")
        .trim();
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const key = tid === String(pid) ? "main (JS)" : name;
      out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) / TICKS);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return out;
}

function diff(a: Map<string, number>, b: Map<string, number>, into: Map<string, number>): void {
  for (const [k, v] of b) into.set(k, (into.get(k) ?? 0) + v - (a.get(k) ?? 0));
}

interface Window {
  pid: number;
  role: number;
  from: number;
  to: number;
}

const dir = mkdtempSync(join(tmpdir(), "edgenode-restore-prof-"));
const profDir = join(dir, "prof");
mkdirSync(profDir);
let cluster: Cluster | undefined;
try {
  cluster = await startCluster("restore-prof", {
    logLevel: "WARN",
    ...(CPUPROF ? { env: { BUN_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir}` } } : {}),
  });
  const input = join(dir, "in.snap");
  const w = await writeVarsSnapshot(input, "bench", VARS, 1000, 5);
  console.error(`${VARS} vars, ${(w.size / 1e6).toFixed(1)} MB`);
  const windows: Window[] = [];
  const cpuByRole = ROLES.map(() => [] as number[]);
  const threads = ROLES.map(() => new Map<string, number>());
  for (let run = 0; run <= RUNS; run++) {
    const leader = await cluster.waitForLeader(30_000);
    await leader.putVar("marker/state", { tag: `before-${run}` });
    const [a, b] = cluster.followers(leader) as [ClusterServer, ClusterServer];
    const order = [leader, a, b];
    for (const s of order)
      await waitFor("marker overwritten", 30_000, async () => (await getItems(s, "marker/state"))?.tag !== "bench" || undefined, 50);
    const pids = order.map((s) => s.proc!.pid);
    const t0 = pids.map(threadCpu);
    const c0 = pids.map(cpuSeconds);
    const perfs =
      run === 0
        ? []
        : pids.map((pid, i) =>
            Bun.spawn(
              [
                "perf",
                "record",
                "-q",
                ...(PERF_G ? ["-g"] : []),
                "-e",
                "cpu-clock",
                "-c",
                String(PERF_NS),
                "-p",
                String(pid),
                "-o",
                join(dir, `perf.${run}.${i}`),
              ],
              {
                stdout: "ignore",
                stderr: "ignore",
              },
            ),
          );
    await Bun.sleep(300);
    const from = Date.now() * 1000;
    // A server still busy with the previous round (its snapshot after the restore) answers 503: wait and retry.
    await waitFor(
      "the restore accepted",
      60_000,
      async () => {
        const p = Bun.spawn(["curl", "-sS", "-f", "-T", input, "-o", "/dev/null", `${a.url}/v1/operator/snapshot`], { stderr: "pipe" });
        if ((await p.exited) === 0) return true;
        const err = await new Response(p.stderr).text();
        if (!err.includes("503")) throw new Error(`restore: ${err}`);
        return undefined;
      },
      500,
    );
    for (const s of order) await waitFor("restored", 300_000, async () => (await getItems(s, "marker/state"))?.tag === "bench", 20);
    await waitQuiet(pids, 60_000);
    const to = Date.now() * 1000;
    const c1 = pids.map(cpuSeconds);
    for (const pp of perfs) pp.kill("SIGINT");
    await Promise.all(perfs.map((pp) => pp.exited));
    console.error(`round ${run}: CPU s ${c1.map((c, i) => (c - c0[i]!).toFixed(2)).join(" / ")}`);
    if (run === 0) continue;
    for (const [i, pid] of pids.entries()) {
      windows.push({ pid, role: i, from, to });
      cpuByRole[i]!.push(c1[i]! - c0[i]!);
      diff(t0[i]!, threadCpu(pid), threads[i]!);
    }
  }
  for (const s of cluster.servers) await s.terminate(30_000);

  // ---- perf: CPU per shared object and symbol, per role ----
  for (const [r, role] of ROLES.entries()) {
    const sym = new Map<string, number>();
    const dso = new Map<string, number>();
    for (let run = 1; run <= RUNS; run++) {
      const rep = Bun.spawnSync(
        ["perf", "report", "-i", join(dir, `perf.${run}.${r}`), "--stdio", "--no-children", "-n", "--sort", "dso,sym", "-g", "none"],
        { stdout: "pipe", stderr: "ignore" },
      );
      for (const line of rep.stdout.toString().split("\n")) {
        const m = /^\s+[\d.]+%\s+(\d+)\s+(\S+)\s+\[.\]\s+(.*)$/.exec(line);
        if (!m) continue;
        const ms = (Number(m[1]) * PERF_NS) / 1e6 / RUNS;
        const d = m[2]!.replace(/^.*\//, "");
        const k = `${d} ${m[3]!.trim().slice(0, 90)}`;
        sym.set(k, (sym.get(k) ?? 0) + ms);
        dso.set(d, (dso.get(d) ?? 0) + ms);
      }
    }
    if (PERF_G) {
      // With call chains: each sample to the syscall or page fault under it, else user code or other kernel work.
      const kind = new Map<string, number>();
      for (let run = 1; run <= RUNS; run++) {
        const sc = Bun.spawnSync(["perf", "script", "-i", join(dir, `perf.${run}.${r}`), "-F", "tid,pid,ip,sym,dso"], {
          stdout: "pipe",
          stderr: "ignore",
        });
        for (const block of sc.stdout.toString().split("\n\n")) {
          const lines = block.trim().split("\n");
          const head = /^(\d+)\/(\d+)/.exec(lines[0]?.trim() ?? "");
          if (!head) continue;
          const frames = lines.slice(1).join("\n");
          const sys = /__(?:x64|do)_sys_(\w+)/.exec(frames)?.[1];
          const top = lines[1] ?? "";
          const k = sys
            ? `syscall ${sys}`
            : frames.includes("asm_exc_page_fault")
              ? "page fault"
              : top.includes("kernel.kallsyms")
                ? "kernel, other (scheduling, interrupts)"
                : "user";
          const key = `${head[1] === head[2] ? "JS thread" : "other threads"}: ${k}`;
          kind.set(key, (kind.get(key) ?? 0) + PERF_NS / 1e6 / RUNS);
        }
      }
      console.log(`\n## perf call chains, ${role}: ms of CPU per restore`);
      for (const [k, v] of [...kind].sort((x, y) => y[1] - x[1]).filter(([, v]) => v >= 2))
        console.log(`  ${v.toFixed(0).padStart(6)} ms  ${k}`);
    }
    const all = [...dso.values()].reduce((x, y) => x + y, 0);
    console.log(`\n## perf, ${role}: ${all.toFixed(0)} ms of CPU per restore; by object:`);
    for (const [k, v] of [...dso].sort((x, y) => y[1] - x[1]).slice(0, 8)) console.log(`  ${v.toFixed(0).padStart(6)} ms  ${k}`);
    console.log(`by symbol, top ${TOP}:`);
    for (const [k, v] of [...sym].sort((x, y) => y[1] - x[1]).slice(0, TOP))
      console.log(`  ${((100 * v) / all).toFixed(1).padStart(5)}%  ${v.toFixed(0).padStart(6)} ms  ${k}`);
  }

  // ---- the profiles: self time per function within the windows, per role ----
  const self = ROLES.map(() => new Map<string, number>());
  const total = ROLES.map(() => 0);
  for (const f of readdirSync(profDir)) {
    const prof = JSON.parse(readFileSync(join(profDir, f), "utf8")) as {
      nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
      startTime: number;
      samples: number[];
      timeDeltas: number[];
    };
    const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(f)?.[1]);
    const mine = windows.filter((x) => x.pid === pid);
    if (mine.length === 0) continue;
    const name = new Map(
      prof.nodes.map((n) => [
        n.id,
        `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/src\//, "src/")}:${n.callFrame.lineNumber}`,
      ]),
    );
    let t = prof.startTime;
    // A sample after a pause (the thread out of the VM, e.g. waiting for I/O) carries the pause as its delta:
    // each sample counts as one sampling interval instead.
    for (const [i, id] of prof.samples.entries()) {
      t += prof.timeDeltas[i] ?? 0;
      const dt = PROF_US;
      const win = mine.find((x) => t >= x.from && t <= x.to);
      if (!win) continue;
      const key = name.get(id) ?? "?";
      if (/^\(idle\)|^\(program\)/.test(key)) continue;
      self[win.role]!.set(key, (self[win.role]!.get(key) ?? 0) + dt / 1000);
      total[win.role]! += dt / 1000;
    }
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
  for (const [r, role] of ROLES.entries()) {
    const n = cpuByRole[r]!.length;
    console.log(`\n## ${role}: CPU s per restore, median of ${n}: ${med(cpuByRole[r]!).toFixed(2)}; by thread (mean per restore):`);
    for (const [k, v] of [...threads[r]!].sort((x, y) => y[1] - x[1]).filter(([, v]) => v > 0))
      console.log(`  ${k.padEnd(24)} ${(v / n).toFixed(3)}`);
    console.log(`JS thread samples: ${(total[r]! / n).toFixed(0)} ms per restore; self time, top ${TOP}:`);
    for (const [k, v] of [...self[r]!].sort((x, y) => y[1] - x[1]).slice(0, TOP))
      console.log(`  ${((100 * v) / total[r]!).toFixed(1).padStart(5)}%  ${(v / n).toFixed(1).padStart(7)} ms  ${k}`);
  }
} finally {
  await cluster?.cleanup();
  if (!process.env.EDGENODE_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${dir}`);
}
