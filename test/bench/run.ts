// `bun run bench`: runs every test/bench/*.bench.ts in sequence (each prints a markdown table of
// medians beside its baseline) and writes test/bench/RESULTS.md with the machine, the date, each
// command and each bench's table. `bun run bench -- NAME...` runs only benches whose name matches.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

const DIR = import.meta.dir;
const ROOT = join(DIR, "..", "..");
const PER_BENCH_TIMEOUT_MS = 15 * 60_000;
const MAX_OUTPUT_CHARS = 200_000;

function machine(): string {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    model = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? model;
  } catch {
    // not Linux: keep os.cpus()'s name
  }
  const nproc = navigator.hardwareConcurrency ?? cpus().length;
  return `${nproc} × ${model}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${process.platform}/${process.arch}, Bun ${Bun.version}`;
}

interface BenchResult {
  name: string;
  command: string;
  code: number | string;
  seconds: number;
  tables: string;
  tail: string;
}

/** The markdown table lines of `out` (with a heading line just before a table kept as its title). */
function tables(out: string): string {
  const lines = out.split("\n");
  const keep: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trimStart().startsWith("|")) {
      const prev = lines[i - 1] ?? "";
      if (!prev.trimStart().startsWith("|")) {
        if (keep.length) keep.push("");
        if (prev.trim()) keep.push(prev.trim().startsWith("#") ? `**${prev.replace(/^#+\s*/, "").trim()}**` : prev.trim(), "");
      }
      keep.push(l.trimEnd());
    }
  }
  return keep.join("\n");
}

async function runBench(file: string): Promise<BenchResult> {
  const rel = `test/bench/${file}`;
  const command = `bun ${rel}`;
  console.error(`== ${command}`);
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, rel], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill("SIGKILL");
  }, PER_BENCH_TIMEOUT_MS);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(out.slice(0, MAX_OUTPUT_CHARS));
  return {
    name: file.replace(/\.bench\.ts$/, ""),
    command,
    code: timedOut ? `killed after ${PER_BENCH_TIMEOUT_MS / 1000} s` : code,
    seconds,
    tables: tables(out.slice(0, MAX_OUTPUT_CHARS)),
    tail: err.split("\n").slice(-15).join("\n"),
  };
}

const only = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) throw new Error(`no benches match ${only.join(" ")}`);

/**
 * The comparison needs etcd 3.4 and wrk (Debian's etcd-server, etcd-client, wrk), and the hashicorp/raft
 * anchor Go with Debian's hashicorp/raft and raft-boltdb sources: installed here when absent and apt-get
 * is usable (root); otherwise the benches say what they skipped.
 */
function ensureTools(): void {
  const missing = [
    ["etcd", "etcd-server"],
    ["etcdctl", "etcd-client"],
    ["wrk", "wrk"],
  ]
    .filter(([bin]) => !Bun.which(bin!))
    .map(([, pkg]) => pkg!);
  if (!Bun.which("go")) missing.push("golang-go");
  for (const [src, pkg] of [
    ["raft/api.go", "golang-github-hashicorp-raft-dev"],
    ["raft-boltdb/bolt_store.go", "golang-github-hashicorp-raft-boltdb-dev"],
  ] as const)
    if (!existsSync(`/usr/share/gocode/src/github.com/hashicorp/${src}`)) missing.push(pkg);
  if (missing.length === 0) return;
  if (!Bun.which("apt-get") || process.getuid?.() !== 0) {
    console.error(`not installed and cannot install here: ${missing.join(", ")}`);
    return;
  }
  console.error(`installing ${missing.join(", ")} with apt-get`);
  // Keep the packages' services from starting on install: the benches run their own processes.
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", RUNLEVEL: "1" };
  const r = Bun.spawnSync(["apt-get", "install", "-y", "--no-install-recommends", ...missing], { env, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) console.error(`apt-get install failed (exit ${r.exitCode}): ${r.stderr.toString().slice(-2000)}`);
  if (Bun.which("systemctl")) Bun.spawnSync(["systemctl", "stop", "etcd"], { stdout: "ignore", stderr: "ignore" });
}

ensureTools();
const started = new Date();
const results: BenchResult[] = [];
for (const f of files) results.push(await runBench(f));

const md: string[] = [
  "# Benchmark results",
  "",
  `- Machine: ${machine()}`,
  `- Date: ${started.toISOString()} (total ${results.reduce((a, r) => a + r.seconds, 0).toFixed(0)} s)`,
  `- Command: \`bun run bench${only.length ? ` ${only.join(" ")}` : ""}\` (each bench below can be run alone with its command)`,
  "- Figures are medians; each table carries the baseline measured in the same run. The machine is shared, so compare rows within a table rather than across runs.",
  "",
];
for (const r of results) {
  md.push(`## ${r.name}`, "", `\`${r.command}\` — ${r.seconds.toFixed(1)} s${r.code === 0 ? "" : `, **failed: exit ${r.code}**`}`, "");
  md.push(r.tables || "_(no table printed)_", "");
  if (r.code !== 0) md.push("```", r.tail, "```", "");
}
writeFileSync(join(DIR, "RESULTS.md"), md.join("\n"));
console.error(`wrote test/bench/RESULTS.md (${results.filter((r) => r.code === 0).length}/${results.length} benches succeeded)`);
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
