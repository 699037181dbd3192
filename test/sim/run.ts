// CLI for the simulation: `bun run sim --seeds N --seed S [--steps K] [--disk mem|sim] [--trace] [--bug NAME] [--keep-going]`.
// --disk sim runs every server's log and hard state on the real Wal and StableStore over a SimDisk.
// Runs N seeds from S; the last line gives seeds run, steps and violations. On a failure it prints the
// seed, what broke, the profile and a one-line replay command, and exits 1. With --keep-going it runs
// every seed and ends with the failures grouped by kind (the first violation, numbers normalised), each
// with its replay line; the exit is still 1 if any seed failed.
import { runSeed } from "./cluster.ts";
import type { SimOptions } from "./cluster.ts";
import type { DiskMode } from "./durable_store.ts";
import { BUG_VARIANTS } from "./variants.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function int(name: string, dflt: number): number {
  const v = arg(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

const seeds = int("seeds", 100);
const first = int("seed", Math.floor(Math.random() * 1e9));
const steps = int("steps", 2000);
const trace = process.argv.includes("--trace");
const keepGoing = process.argv.includes("--keep-going");
const diskArg = arg("disk") ?? "mem";
if (diskArg !== "mem" && diskArg !== "sim") {
  console.error(`--disk must be mem or sim, got ${diskArg}`);
  process.exit(2);
}
const disk: DiskMode = diskArg;
const bugName = arg("bug");
let variant: Partial<SimOptions> = {};
if (bugName !== undefined) {
  const v = BUG_VARIANTS[bugName];
  if (!v) {
    console.error(`unknown --bug ${bugName}; one of ${Object.keys(BUG_VARIANTS).join(", ")}`);
    process.exit(2);
  }
  variant = v;
}

/** A failure's kind: its first violation with every number (tick, index, term, node, line) made N. */
function kind(violation: string): string {
  return violation.replace(/\d+/g, "N");
}

const t0 = performance.now();
const every = seeds >= 10_000 ? 1000 : 100;
const bug = bugName ? ` --bug ${bugName}` : "";
const replay = (seed: number) => `bun run sim --seeds 1 --seed ${seed} --steps ${steps} --disk ${disk}${bug} --trace`;
let totalSteps = 0;
let ran = 0;
const failures = new Map<string, { seed: number; profile: string; violation: string }[]>();
let failed = 0;
for (let k = 0; k < seeds; k++) {
  const seed = first + k;
  const r = await runSeed({ seed, steps, trace, disk, ...variant });
  totalSteps += r.steps;
  ran++;
  if (r.violations.length > 0) {
    failed++;
    if (trace) console.log(r.trace.join("\n"));
    console.log(`FAIL seed ${seed} (${r.profile})`);
    for (const v of r.violations) console.log(`  ${v}`);
    console.log(`  replay: ${replay(seed)}`);
    if (!keepGoing) break;
    const v = r.violations[0]!;
    const group = failures.get(kind(v)) ?? [];
    group.push({ seed, profile: r.profile, violation: v });
    failures.set(kind(v), group);
  }
  if ((k + 1) % every === 0) console.log(`${k + 1}/${seeds} seeds, ${failed} failed (${Math.round((performance.now() - t0) / 1000)} s)`);
}
if (keepGoing && failed > 0) {
  console.log(`\n${failed} of ${ran} seeds failed, ${failures.size} kind(s):`);
  for (const [k, group] of [...failures].sort((a, b) => b[1].length - a[1].length)) {
    console.log(`[${group.length}] ${k}`);
    for (const f of group) console.log(`  seed ${f.seed} (${f.profile}): ${replay(f.seed)}`);
  }
}
console.log(
  `disk=${disk} seeds=${ran} first=${first} steps=${totalSteps} violations=${failed} time=${((performance.now() - t0) / 1000).toFixed(1)}s`,
);
process.exit(failed > 0 ? 1 : 0);
