// What a process costs over one operation, from /proc (Linux): its CPU seconds (utime + stime) and its
// peak resident set. The peak is reset before the operation (writing 5 to /proc/PID/clear_refs resets
// VmHWM) and also sampled from VmRSS, so a kernel that refuses the reset still gives a bounded figure.
import { readFileSync, writeFileSync } from "node:fs";

const TICKS = (() => {
  const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
  const n = Number(r.stdout.toString().trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** User + system CPU seconds the process has used so far (threads included, children not). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Watches processes from now on: `stop()` returns, per pid, the CPU seconds used since the start and
 * the peak RSS in bytes (the larger of VmHWM after a reset, when the reset was allowed, and VmRSS sampled
 * every `everyMs`).
 */
export function watch(pids: number[], everyMs = 50): { cpu: () => number[]; stop: () => { cpu: number[]; peak: number[] } } {
  const reset = pids.map((pid) => {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
      return true;
    } catch {
      return false;
    }
  });
  const cpu0 = pids.map(cpuSeconds);
  const sampled = pids.map((pid) => statusKb(pid, "VmRSS"));
  const timer = setInterval(() => {
    for (const [i, pid] of pids.entries()) sampled[i] = Math.max(sampled[i]!, statusKb(pid, "VmRSS"));
  }, everyMs);
  const cpu = () => pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
  return {
    cpu,
    stop: () => {
      clearInterval(timer);
      const used = cpu();
      const peak = pids.map((pid, i) => Math.max(sampled[i]!, statusKb(pid, "VmRSS"), reset[i] ? statusKb(pid, "VmHWM") : 0));
      return { cpu: used, peak };
    },
  };
}

/**
 * Waits until none of the processes uses more than `idleCpu` CPU seconds over `windowMs` (the work an
 * operation leaves behind, such as a snapshot written after a restore, is over), at most `timeoutMs`.
 * Returns whether they went quiet in time.
 */
export async function waitQuiet(pids: number[], timeoutMs: number, windowMs = 500, idleCpu = 0.05): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  let last = pids.map(cpuSeconds);
  while (performance.now() < end) {
    await Bun.sleep(windowMs);
    const now = pids.map(cpuSeconds);
    if (now.every((c, i) => c - last[i]! <= idleCpu)) return true;
    last = now;
  }
  return false;
}
