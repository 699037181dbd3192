// Snapshot save through a follower, two builds side by side (A and B), against etcd 3.4's `etcdctl
// snapshot save` of the same variables in the same run (its saves taking turns with theirs): where a save's time and CPU go, and how far
// each build is from etcd's rate per variable (issue #23's goal: at least 2×).
// Run: EDGENODE_BENCH_A=/path/to/old/build/node [EDGENODE_BENCH_B=build/node] bun test/bench/save_ab.bench.ts
// A third build, EDGENODE_BENCH_C, joins the rotation when given. EDGENODE_BENCH_VARS (default 100000), EDGENODE_BENCH_RUNS (default 5), EDGENODE_BENCH_FULL=1 (1M
// variables; the clusters and etcd then run one after the other, not side by side, for memory), EDGENODE_BENCH_ETCD=0
// skips etcd. Without _A only B runs.
// Each save is `curl -o FILE` then `sync FILE` (durable, as etcdctl's file is), through a follower; the
// clusters alternate save by save. Per save: the wall time, the time to the response headers (curl's
// time_starttransfer), and the CPU seconds (user/system from /proc) of the leader, the answering follower
// and curl. The Digest header is checked against the file after the clock stops.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, type ClusterServer, freePort, waitFor } from "../cluster/harness.ts";
import { getItems, restoreFile, textPool, writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";
import { type EtcdLoaded, startEtcdLoaded } from "./etcd_snapshot.ts";

const FULL = process.env.EDGENODE_BENCH_FULL === "1";
const VARS = Number(process.env.EDGENODE_BENCH_VARS ?? (FULL ? 1_000_000 : 100_000));
const VALUE = 1000;
const RUNS = Number(process.env.EDGENODE_BENCH_RUNS ?? 5);
const SIDE_BY_SIDE = !FULL && VARS <= 300_000;
const STEP_MS = FULL ? 1_200_000 : 300_000;
const MB = 1e6;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "—");

const TICKS = 100;
/** [user, system] CPU seconds of a process so far. */
function cpu(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [Number(f[11]) / TICKS, Number(f[12]) / TICKS];
}

interface Save {
  ms: number;
  headersMs: number;
  bytes: number;
  /** [user, system] of the leader, the answering follower, curl. */
  cpu: [number, number][];
}

async function startOn(label: string, binary: string): Promise<Cluster> {
  const c = new Cluster(label);
  await c.init({ binary });
  const ports = [0, 1, 2].map(() => ({ http: freePort(), rpc: freePort() }));
  const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
  for (const p of ports) c.add({ bootstrapExpect: 3, ports: p, join: all });
  try {
    for (const s of c.servers) s.start();
    await Promise.all(c.servers.map((s) => s.waitHttp()));
    await c.waitForLeader(20_000);
  } catch (e) {
    await c.cleanup();
    throw e;
  }
  return c;
}

/** Restores `input` through a follower and waits until every server serves it and has taken its raft snapshot. */
async function load(c: Cluster, input: string): Promise<void> {
  const taken = c.servers.map((s) => s.log().match(/snapshot taken/g)?.length ?? 0);
  // A large restore on a busy machine may lose its leader on the way (503): the restore is tried again.
  for (let attempt = 1; ; attempt++) {
    const leader = await c.waitForLeader(30_000);
    const [a] = c.followers(leader) as [ClusterServer];
    const r = await restoreFile(a, input, "", AbortSignal.timeout(STEP_MS));
    if (r.status === 200) break;
    if (r.status !== 503 || attempt === 3) throw new Error(`restore: ${r.status} ${r.text}`);
    console.error(`restore: ${r.status} ${r.text}; trying again`);
  }
  for (const s of c.servers)
    await waitFor(`${s.name} restored`, STEP_MS, async () => (await getItems(s, "marker/state"))?.tag === "bench", 200);
  for (const [i, s] of c.servers.entries())
    await waitFor(
      `${s.name}'s snapshot after the restore`,
      STEP_MS,
      () => (s.log().match(/snapshot taken/g)?.length ?? 0) > taken[i]! || undefined,
      100,
    );
}

async function save(c: Cluster, file: string): Promise<Save> {
  const leader = await c.waitForLeader(30_000);
  const [b] = c.followers(leader) as [ClusterServer];
  const pids = [leader.proc!.pid, b.proc!.pid];
  const before = pids.map(cpu);
  const t0 = performance.now();
  const p = Bun.spawn(
    [
      "curl",
      "-sS",
      "-f",
      "--max-time",
      String(STEP_MS / 1000),
      "-o",
      file,
      "-D",
      `${file}.h`,
      "-w",
      "%{time_starttransfer}",
      `${b.url}/v1/operator/snapshot`,
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`curl save: ${await new Response(p.stderr).text()}`);
  const ru = p.resourceUsage()!.cpuTime;
  const curlCpu: [number, number] = [Number(ru.user) / 1e6, Number(ru.system) / 1e6];
  const sy = Bun.spawn(["sync", file], { stdout: "ignore", stderr: "pipe" });
  if ((await sy.exited) !== 0) throw new Error(`sync: ${await new Response(sy.stderr).text()}`);
  const ms = performance.now() - t0;
  const after = pids.map(cpu);
  const digest = /^digest:\s*(\S+)/im.exec(readFileSync(`${file}.h`, "utf8"))?.[1];
  const h = createHash("sha256");
  for await (const ch of Bun.file(file).stream()) h.update(ch);
  if (digest !== `sha-256=${h.digest("base64")}`) throw new Error(`save: Digest ${digest} does not match the file`);
  const bytes = statSync(file).size;
  rmSync(file);
  rmSync(`${file}.h`);
  const used = pids.map((_, i): [number, number] => [after[i]![0] - before[i]![0], after[i]![1] - before[i]![1]]);
  return { ms, headersMs: Number(out.trim()) * 1000, bytes, cpu: [...used, curlCpu] };
}

const builds = [
  ...(process.env.EDGENODE_BENCH_A ? [{ name: "A", binary: process.env.EDGENODE_BENCH_A }] : []),
  { name: "B", binary: process.env.EDGENODE_BENCH_B ?? join(import.meta.dir, "../../build/node") },
  ...(process.env.EDGENODE_BENCH_C ? [{ name: "C", binary: process.env.EDGENODE_BENCH_C }] : []),
];
const results = new Map<string, Save[]>(builds.map((b) => [b.name, []]));
const clusters: Cluster[] = [];
const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
/** etcd's save times and file size, or why there are none. */
let etcd: { ms: number[]; size: number } | string = "skipped (EDGENODE_BENCH_ETCD=0)";
const scratch = tmpdir();
const etcdDir = join(scratch, `etcd-${process.pid}`);
let etcdUp: EtcdLoaded | undefined;
const startEtcd = async (): Promise<void> => {
  if (process.env.EDGENODE_BENCH_ETCD === "0") return;
  mkdirSync(etcdDir, { recursive: true });
  try {
    const e = await startEtcdLoaded(etcdDir, textPool(5), { vars: VARS, value: VALUE });
    if (typeof e === "string") etcd = e;
    else {
      etcdUp = e;
      etcd = { ms: [], size: 0 };
    }
  } catch (e) {
    etcd = `etcd failed: ${(e as Error).message}`;
  }
};
const etcdSave = async (run: number): Promise<void> => {
  if (!etcdUp || typeof etcd === "string") return;
  const r = await etcdUp.save(join(etcdDir, `etcd-${run}.db`));
  etcd.ms.push(r.ms);
  etcd.size = r.size;
  console.error(`etcd save ${run + 1}: ${f2(r.ms / 1000)} s, ${(r.size / MB).toFixed(1)} MB`);
};
try {
  const t00 = performance.now();
  const input = join(scratch, `save-ab-${process.pid}.snap`);
  const w = await writeVarsSnapshot(input, "bench", VARS, VALUE, 5);
  console.error(`input: ${(w.size / MB).toFixed(1)} MB, ${VARS} vars, ${((performance.now() - t00) / 1000).toFixed(1)} s`);
  /** `withEtcd`: etcd's save takes its turn in each round, so that it meets the same machine as the builds. */
  const round = async (sets: { name: string; c: Cluster }[], withEtcd: boolean) => {
    for (let run = 0; run < RUNS; run++) {
      // Each build (and etcd) goes first in turn.
      const turns: (() => Promise<void>)[] = sets.map(({ name, c }) => async () => {
        const r = await save(c, join(c.dir, `save-${run}.snap`));
        results.get(name)!.push(r);
        console.error(
          `${name} save ${run + 1}: ${f2(r.ms / 1000)} s (headers ${f2(r.headersMs / 1000)} s), ${(r.bytes / MB).toFixed(1)} MB; CPU user/sys leader ${r.cpu[0]!.map(f2).join("/")}, follower ${r.cpu[1]!.map(f2).join("/")}, curl ${r.cpu[2]!.map(f2).join("/")}`,
        );
      });
      if (withEtcd) turns.push(() => etcdSave(run));
      for (let i = 0; i < turns.length; i++) await turns[(i + run) % turns.length]!();
    }
  };
  if (SIDE_BY_SIDE) {
    await startEtcd();
    const sets = [];
    for (const b of builds) {
      const c = await startOn(`save-ab-${b.name}`, b.binary);
      clusters.push(c);
      await load(c, input);
      sets.push({ name: b.name, c });
    }
    await round(sets, true);
  } else {
    // One system at a time, for memory: etcd's saves come after the builds'.
    for (const b of builds) {
      const c = await startOn(`save-ab-${b.name}`, b.binary);
      clusters.push(c);
      await load(c, input);
      await round([{ name: b.name, c }], false);
      await c.cleanup();
      clusters.pop();
    }
  }
  for (const c of clusters.splice(0)) await c.cleanup();
  rmSync(input, { force: true });
  if (!SIDE_BY_SIDE) {
    await startEtcd();
    for (let run = 0; run < Math.min(RUNS, 3); run++) await etcdSave(run);
  }
} catch (e) {
  for (const c of clusters) {
    console.error(c.tails(40));
    c.keep = true;
  }
  throw e;
} finally {
  for (const c of clusters) await c.cleanup();
  await etcdUp?.stop();
  rmSync(etcdDir, { recursive: true, force: true });
}

const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(
  `\n### Save through a follower, ${VARS} variables of ~${VALUE} B, medians of ${RUNS} (load average ${load0} before, ${load1} after)\n`,
);
console.log(
  "| build | save s (curl -o + sync) | to headers s | file MB | leader CPU user/sys s | follower CPU user/sys s | curl CPU user/sys s | etcd s / edgenode s |",
);
console.log("|---|---:|---:|---:|---|---|---|---:|");
// Assigned in closures above: read through its declared type, not the narrowed initial one.
const etcdOut = etcd as { ms: number[]; size: number } | string;
const etcdMs = typeof etcdOut === "string" ? NaN : median(etcdOut.ms);
for (const [name, rs] of results) {
  const m = (f: (r: Save) => number) => median(rs.map(f));
  const us = (i: number) => `${f2(m((r) => r.cpu[i]![0]))} / ${f2(m((r) => r.cpu[i]![1]))}`;
  console.log(
    `| ${name} | ${f2(m((r) => r.ms) / 1000)} (${rs.map((r) => f2(r.ms / 1000)).join(", ")}) | ${f2(m((r) => r.headersMs) / 1000)} | ${(m((r) => r.bytes) / MB).toFixed(1)} | ${us(0)} | ${us(1)} | ${us(2)} | ${f2(etcdMs / m((r) => r.ms))}× |`,
  );
}
if (typeof etcdOut === "string") console.log(`\netcd 3.4: ${etcdOut}`);
else
  console.log(
    `\netcd 3.4 \`etcdctl snapshot save\`, same ${VARS} keys: ${f2(etcdMs / 1000)} s median (${etcdOut.ms.map((x) => f2(x / 1000)).join(", ")}), file ${(etcdOut.size / MB).toFixed(1)} MB. The ratio is per variable: the same variables in both.`,
  );
