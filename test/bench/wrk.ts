// wrk driving cluster_load.lua against one server, with the CPU the given server processes used per
// request and the cores busy with anything else meanwhile; shared by the benches that load a cluster.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

const LUA = join(import.meta.dir, "cluster_load.lua");

export interface Point {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU the servers used per request, all members together (µs). */
  cpuUsPerOp: number;
  /** Cores busy with anything but these servers (other sessions, wrk, kernel) during the point. */
  otherCores: number;
}

const CLK_TCK = 100;

/** utime+stime of a process in seconds (0 when it is gone). */
export function procCpu(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine. */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0) / CLK_TCK;
  const idle = ((f[3] ?? 0) + (f[4] ?? 0)) / CLK_TCK;
  return { busy: total - idle, total };
}

export function which(cmd: string): boolean {
  return Bun.spawnSync(["sh", "-c", `command -v ${cmd}`], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

export async function wrk(url: string, env: Record<string, string>, conns: number, seconds: number, pids: number[]): Promise<Point> {
  const cpu0 = pids.reduce((a, p) => a + procCpu(p), 0);
  const m0 = machineCpu();
  const p = Bun.spawn(["wrk", "-t1", `-c${conns}`, `-d${seconds}s`, "--timeout", "10s", "-s", LUA, url], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => p.kill("SIGKILL"), (seconds + 30) * 1000);
  const out = await new Response(p.stdout).text();
  await p.exited;
  clearTimeout(killer);
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`wrk gave no result: ${out} ${await new Response(p.stderr).text()}`);
  const r = JSON.parse(line.slice(7)) as {
    requests: number;
    duration_us: number;
    p50_us: number;
    p99_us: number;
    status_errors: number;
    socket_errors: number;
  };
  const serverCpu = pids.reduce((a, p) => a + procCpu(p), 0) - cpu0;
  const m1 = machineCpu();
  const ncpu = cpus().length;
  const wall = (m1.total - m0.total) / ncpu;
  return {
    rps: r.requests / (r.duration_us / 1e6),
    p50: r.p50_us / 1000,
    p99: r.p99_us / 1000,
    errors: r.status_errors + r.socket_errors,
    cpuUsPerOp: r.requests > 0 ? (serverCpu / r.requests) * 1e6 : NaN,
    otherCores: wall > 0 ? Math.max(0, (m1.busy - m0.busy - serverCpu) / wall) : NaN,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
