// A 3-server edgenode cluster (compiled binary, loopback) beside a 3-member etcd 3.4 cluster in the
// same run, driven by the same load generator (wrk + cluster_load.lua): PUT throughput and latency at
// 1/16/64 clients, linearizable and stale GETs at 16, and leader failover time over repeated kills.
// Run: bun test/bench/cluster.bench.ts   (BENCH_SECONDS=4 per point, BENCH_ROUNDS=3 per PUT point, FAILOVER_KILLS=10,
// BENCH_WARMUP=10 seconds of discarded 16-client PUTs per system first: a JIT-compiled server is measured warm, as it runs)
// A/B: EDGENODE_BENCH_A=/tmp/base/build/node [EDGENODE_BENCH_B=build/node] runs two edgenode clusters
// (A and B) beside etcd, every PUT round alternating A, B, etcd. BENCH_PUT_ONLY=1 skips the reads and
// failovers; BENCH_CLIENTS=16,64 picks the PUT points; BENCH_ETCD=0 leaves etcd out;
// EDGENODE_SNAPSHOT_THRESHOLD (or _A / _B for one side) sets the servers' snapshot_threshold (default 8192);
// EDGENODE_BENCH_KEYED_A=0 (or _B) runs that side without a cluster key (a binary from before `server { encrypt }`).
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { Cluster, freePort, waitFor, type ClusterServer } from "../cluster/harness.ts";
import { median, which, wrk, type Point } from "./wrk.ts";
import { etcdCommand } from "./etcd_member.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const KILLS = Number(process.env.FAILOVER_KILLS ?? 10);
/** Rounds of each PUT point, alternating between the systems; medians are reported. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Seconds of discarded load per system before the first point (JavaScriptCore compiles the hot paths meanwhile). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10);
const READ_KEYS = 1000;
const PUT_ONLY = process.env.BENCH_PUT_ONLY === "1";
const CLIENTS = (process.env.BENCH_CLIENTS ?? "1,16,64").split(",").map(Number);
/** snapshot_threshold of target `label`'s servers (EDGENODE_SNAPSHOT_THRESHOLD_A/_B, else EDGENODE_SNAPSHOT_THRESHOLD). */
function snapshotThreshold(label: string): number | undefined {
  const v = process.env[`EDGENODE_SNAPSHOT_THRESHOLD_${label}`] ?? process.env.EDGENODE_SNAPSHOT_THRESHOLD;
  return v ? Number(v) : undefined;
}

/** Runs `n` async tasks with at most `conc` at once. */
async function pool(n: number, conc: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

// ---------------------------------------------------------------- edgenode

class EdgeTarget {
  readonly cluster = new Cluster("bench");
  leader!: ClusterServer;

  /** `binary`: a compiled binary to run instead of this worktree's build/node (an A/B run). */
  constructor(
    readonly name = "edgenode",
    private readonly binary?: string,
    private readonly threshold?: number,
    private readonly keyed = true,
  ) {}

  async start(): Promise<void> {
    await this.cluster.init(this.binary ? { binary: this.binary, keyed: this.keyed } : {});
    await this.cluster.startServers(3, { logLevel: "WARN", ...(this.threshold ? { snapshotThreshold: this.threshold } : {}) });
    this.leader = await this.cluster.waitForLeader(20_000);
  }

  url(): string {
    return this.leader.url;
  }

  pids(): number[] {
    return this.cluster.servers.flatMap((s) => (s.proc?.pid ? [s.proc.pid] : []));
  }

  async preload(): Promise<void> {
    const value = "v".repeat(100);
    await pool(READ_KEYS, 16, async (i) => {
      await this.leader.putVar(`r${String(i).padStart(15, "0")}`, { v: value });
    });
  }

  async failover(): Promise<number> {
    const old = this.leader;
    const survivors = this.cluster.servers.filter((s) => s !== old);
    const t0 = performance.now();
    await old.kill();
    this.leader = await this.cluster.waitForLeader(15_000, survivors, 5);
    const ms = performance.now() - t0;
    old.start();
    await old.waitHttp();
    // The restarted server follows again before the next kill.
    await this.cluster.waitForLeader(15_000, this.cluster.servers);
    await waitFor("the restarted server to catch up", 15_000, async () => {
      const [a, b] = await Promise.all([old.raftStats(), this.leader.raftStats()]);
      return (a.applied_index as number) >= (b.commit_index as number);
    });
    return ms;
  }

  async stop(): Promise<void> {
    await this.cluster.cleanup();
  }
}

// ---------------------------------------------------------------- etcd

interface EtcdMember {
  name: string;
  client: number;
  peer: number;
  dataDir: string;
  proc?: ReturnType<typeof Bun.spawn>;
  id?: string;
}

class EtcdTarget {
  readonly name = "etcd 3.4";
  members: EtcdMember[] = [];
  leader!: EtcdMember;
  private token = `bench-${Date.now()}`;

  constructor(private readonly dir: string) {}

  private spawn(m: EtcdMember): void {
    const fd = openSync(join(this.dir, `${m.name}.log`), "a");
    try {
      m.proc = Bun.spawn(
        etcdCommand(m, this.members, ["--initial-cluster-token", this.token, "--logger", "zap", "--log-outputs", "stderr"]),
        { stdin: "ignore", stdout: fd, stderr: fd },
      );
    } finally {
      closeSync(fd);
    }
  }

  private async status(m: EtcdMember): Promise<{ member: string; leader: string }> {
    const r = await fetch(`http://127.0.0.1:${m.client}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(1000),
    });
    const j = (await r.json()) as { header: { member_id: string }; leader: string };
    return { member: j.header.member_id, leader: j.leader };
  }

  private async waitLeader(among: EtcdMember[], everyMs = 50): Promise<EtcdMember> {
    return waitFor(
      "an etcd leader",
      20_000,
      async () => {
        const st = await Promise.all(among.map((m) => this.status(m)));
        for (const [i, s] of st.entries()) among[i]!.id = s.member;
        const l = st[0]!.leader;
        if (!st.every((s) => s.leader === l)) return undefined;
        return among.find((m) => m.id === l);
      },
      everyMs,
    );
  }

  async start(): Promise<void> {
    for (let i = 1; i <= 3; i++) {
      const dataDir = join(this.dir, `m${i}`);
      mkdirSync(dataDir, { recursive: true });
      this.members.push({ name: `m${i}`, client: freePort(), peer: freePort(), dataDir });
    }
    for (const m of this.members) this.spawn(m);
    this.leader = await this.waitLeader(this.members);
  }

  url(): string {
    return `http://127.0.0.1:${this.leader.client}`;
  }

  pids(): number[] {
    return this.members.flatMap((m) => (m.proc?.pid ? [m.proc.pid] : []));
  }

  async preload(): Promise<void> {
    const value = Buffer.from("v".repeat(100)).toString("base64");
    await pool(READ_KEYS, 16, async (i) => {
      const key = Buffer.from(`r${String(i).padStart(15, "0")}`).toString("base64");
      const r = await fetch(`${this.url()}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key, value }),
        signal: AbortSignal.timeout(10_000),
      });
      if (r.status !== 200) throw new Error(`etcd preload: ${r.status}`);
    });
  }

  async failover(): Promise<number> {
    const old = this.leader;
    const survivors = this.members.filter((m) => m !== old);
    const t0 = performance.now();
    old.proc?.kill("SIGKILL");
    await old.proc?.exited;
    this.leader = await this.waitLeader(survivors, 5);
    const ms = performance.now() - t0;
    this.spawn(old);
    await this.waitLeader(this.members);
    return ms;
  }

  async stop(): Promise<void> {
    for (const m of this.members) m.proc?.kill("SIGKILL");
    await Promise.all(this.members.map((m) => m.proc?.exited));
  }
}

// ---------------------------------------------------------------- run

type Target = EdgeTarget | EtcdTarget;

type Add = (what: string, t: Target, cell: string) => void;

async function measureReads(
  targets: Target[],
  reads: Record<string, Record<string, Point>>,
  add: Add,
  fmt: (p: Point) => string,
): Promise<void> {
  for (const stale of [false, true]) {
    for (const t of targets) {
      const p = await wrk(
        t.url(),
        { TARGET: t instanceof EdgeTarget ? "edgenode" : "etcd", OP: "get", KEYS: String(READ_KEYS), STALE: stale ? "1" : "0" },
        16,
        SECONDS,
        t.pids(),
      );
      reads[t.name] = { ...reads[t.name], [stale ? "stale" : "lin"]: p };
      add(`GET ${stale ? "stale (etcd: serializable)" : "linearizable"}, 16 clients`, t, fmt(p));
      console.error(`${t.name} get stale=${stale}: ${fmt(p)}`);
    }
  }
}

async function measureFailover(t: Target, add: Add): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < KILLS; i++) times.push(await t.failover());
  add(
    `leader failover (SIGKILL → survivors agree on a new leader), median of ${KILLS}`,
    t,
    `${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)})`,
  );
  console.error(`${t.name} failover: ${times.map((x) => x.toFixed(0)).join(", ")}`);
}

async function main(): Promise<void> {
  if (!which("wrk")) {
    console.error("wrk is not installed (apt-get install -y wrk); the cluster bench needs it as its load generator");
    process.exit(1);
  }
  const A = process.env.EDGENODE_BENCH_A;
  const B = process.env.EDGENODE_BENCH_B;
  const keyed = (label: string) => process.env[`EDGENODE_BENCH_KEYED_${label}`] !== "0";
  const edge = A
    ? new EdgeTarget("edgenode B", B, snapshotThreshold("B"), keyed("B"))
    : new EdgeTarget("edgenode", undefined, snapshotThreshold("B"));
  const targets: Target[] = A ? [new EdgeTarget("edgenode A", A, snapshotThreshold("A"), keyed("A")), edge] : [edge];
  let etcd: EtcdTarget | undefined;
  if (process.env.BENCH_ETCD === "0") {
    // An A/B run of edgenode alone.
  } else if (which("etcd")) {
    const dir = join(edge.cluster.dir, "etcd");
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    etcd = new EtcdTarget(dir);
    targets.push(etcd);
  } else {
    console.log("**etcd is not installed (apt-get install -y etcd-server): the etcd column is skipped.**\n");
  }
  const rows: { what: string; cells: Map<string, string> }[] = [];
  const add: Add = (what, t, cell) => {
    let row = rows.find((r) => r.what === what);
    if (!row) {
      row = { what, cells: new Map() };
      rows.push(row);
    }
    row.cells.set(t.name, cell);
  };
  const fmt = (p: Point) =>
    `${Math.round(p.rps)} req/s · p50 ${p.p50.toFixed(2)} ms · p99 ${p.p99.toFixed(1)} ms · ${Math.round(p.cpuUsPerOp)} µs CPU/op · other ${p.otherCores.toFixed(2)} cores${p.errors ? ` · ${p.errors} errors` : ""}`;
  const ratios: string[] = [];
  try {
    await Promise.all(targets.map((t) => t.start()));
    // Warm-up (discarded), then each point alternates between the systems under the same load.
    for (const t of targets)
      await wrk(t.url(), { TARGET: t instanceof EdgeTarget ? "edgenode" : "etcd", OP: "put", TAG: "99" }, 16, WARMUP, t.pids());
    const put: Record<string, Record<number, Point>> = {};
    for (const [ci, c] of CLIENTS.entries()) {
      // ROUNDS alternating rounds per point, each writing new keys; every figure is the median of its rounds.
      const runs: Record<string, Point[]> = {};
      for (let r = 0; r < ROUNDS; r++) {
        for (const t of targets) {
          const p = await wrk(
            t.url(),
            { TARGET: t instanceof EdgeTarget ? "edgenode" : "etcd", OP: "put", TAG: `${ci}${r}` },
            c,
            SECONDS,
            t.pids(),
          );
          runs[t.name] = [...(runs[t.name] ?? []), p];
          console.error(`${t.name} put c=${c} round ${r + 1}: ${fmt(p)}`);
        }
      }
      for (const t of targets) {
        const rs = runs[t.name]!;
        const m: Point = {
          rps: median(rs.map((x) => x.rps)),
          p50: median(rs.map((x) => x.p50)),
          p99: median(rs.map((x) => x.p99)),
          errors: rs.reduce((a, x) => a + x.errors, 0),
          cpuUsPerOp: median(rs.map((x) => x.cpuUsPerOp)),
          otherCores: median(rs.map((x) => x.otherCores)),
        };
        put[t.name] = { ...put[t.name], [c]: m };
        const p99s = ROUNDS > 1 ? ` (p99 of each round: ${rs.map((x) => x.p99.toFixed(1)).join(", ")})` : "";
        add(`PUT 16 B path / 100 B value, ${c} client${c > 1 ? "s" : ""}${ROUNDS > 1 ? `, median of ${ROUNDS}` : ""}`, t, fmt(m) + p99s);
      }
      // Round by round, edgenode B against A and each edgenode against etcd (the rounds of a pair ran back
      // to back, under much the same load from outside): the median of these ratios moves less than a
      // ratio of medians on a shared machine.
      const edges = targets.filter((t) => t instanceof EdgeTarget);
      const pairs: [Target, Target][] = edges.slice(1).map((t) => [t, edges[0]!]);
      if (etcd) for (const t of edges) pairs.push([t, etcd]);
      for (const [t, base] of pairs) {
        const a = runs[base.name]!,
          b = runs[t.name]!;
        const rps = a.map((x, i) => b[i]!.rps / x.rps);
        const p99 = a.map((x, i) => b[i]!.p99 / x.p99);
        ratios.push(
          `PUT at ${c}, ${t.name} against ${base.name} round by round: throughput × ${median(rps).toFixed(2)} (${rps.map((x) => x.toFixed(2)).join(", ")}), p99 × ${median(p99).toFixed(2)} (${p99.map((x) => x.toFixed(2)).join(", ")})`,
        );
      }
    }
    const reads: Record<string, Record<string, Point>> = {};
    if (!PUT_ONLY) {
      for (const t of targets) await t.preload();
      await measureReads(targets, reads, add, fmt);
      for (const t of targets) await measureFailover(t, add);
    }
    if (etcd) {
      const e = put[etcd.name]!;
      for (const t of targets) {
        if (t === etcd) continue;
        const n = put[t.name]!;
        const who = `${t.name}/etcd`;
        if (n[16] && e[16]) ratios.push(`PUT at 16 clients: ${who} = ${(n[16].rps / e[16].rps).toFixed(2)}× (goal ≥ 1.5×)`);
        if (n[64] && e[64])
          ratios.push(
            `PUT at 64 clients: ${who} = ${(n[64].rps / e[64].rps).toFixed(2)}×, p99 ${n[64].p99.toFixed(1)} vs ${e[64].p99.toFixed(1)} ms (goal: no worse)`,
          );
        if (n[1] && e[1])
          ratios.push(`PUT at 1 client: ${t.name} p50 ${n[1].p50.toFixed(2)} ms (goal ≤ 1 ms), etcd ${e[1].p50.toFixed(2)} ms`);
        const r = reads[t.name]?.lin,
          re = reads[etcd.name]?.lin;
        if (r && re) ratios.push(`linearizable GET at 16: ${who} = ${(r.rps / re.rps).toFixed(2)}× (goal ≥ 1.5×)`);
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop().catch(() => {})));
  }
  console.log(
    `\n"µs CPU/op": all three servers' CPU per request; "other": cores busy with anything else (wrk, kernel, other sessions) — figures with other > 0.35 are disturbed.`,
  );
  console.log(`\n### Cluster bench: 3 servers on loopback, wrk -t1, ${SECONDS} s per point (same run, alternating)\n`);
  console.log(`| what | ${targets.map((t) => t.name).join(" | ")} |`);
  console.log(`|---|${targets.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${r.what} | ${targets.map((t) => r.cells.get(t.name) ?? "—").join(" | ")} |`);
  if (ratios.length) console.log(`\n${ratios.map((r) => `- ${r}`).join("\n")}`);
}

await main();
