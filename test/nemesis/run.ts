// `bun run nemesis [--time 60s] [--seed S] [--servers 3|5] [--clients N] [--keys N] [--faults a,b] [--keep] [--stale-reads]`:
// one nemesis run; exit 0 when every check passes, 1 otherwise (the kept directory and replay
// command are printed).
import { parseDuration } from "../../src/lib/duration.ts";
import { FAULT_KINDS, type FaultKind } from "./faults.ts";
import { runNemesis } from "./nemesis.ts";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function int(name: string, lo: number, hi: number): number | undefined {
  const v = flag(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  return n;
}

const faults = flag("faults")
  ?.split(",")
  .map((f) => {
    if (!(FAULT_KINDS as readonly string[]).includes(f)) throw new Error(`unknown fault ${f}; known: ${FAULT_KINDS.join(", ")}`);
    return f as FaultKind;
  });
const report = await runNemesis({
  timeMs: parseDuration(flag("time") ?? "60s"),
  seed: int("seed", 0, 2 ** 31) ?? Math.floor(Math.random() * 1_000_000),
  servers: int("servers", 3, 5),
  clients: int("clients", 1, 50),
  keys: int("keys", 1, 100),
  ...(faults ? { faults } : {}),
  keep: process.argv.includes("--keep"),
  staleReads: process.argv.includes("--stale-reads"),
});
console.log(
  report.ok
    ? `PASS seed ${report.seed}`
    : `FAIL seed ${report.seed}\n  ${report.failures.join("\n  ")}\nreplay: ${report.replay}\nkept: ${report.dir}`,
);
process.exit(report.ok ? 0 : 1);
