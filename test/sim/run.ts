// CLI for the simulation: `bun run sim --seeds N --seed S [--steps K] [--disk mem|sim] [--trace] [--bug NAME]`.
// --disk sim runs every server's log and hard state on the real Wal and StableStore over a SimDisk.
// Runs N seeds from S; the last line gives seeds run, steps and violations. On a failure it prints the
// seed, what broke, the profile and a one-line replay command, and exits 1.
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

const t0 = performance.now();
let totalSteps = 0;
let failed = 0;
for (let k = 0; k < seeds; k++) {
  const seed = first + k;
  const r = await runSeed({ seed, steps, trace, disk, ...variant });
  totalSteps += r.steps;
  if (r.violations.length > 0) {
    failed++;
    if (trace) console.log(r.trace.join("\n"));
    console.log(`FAIL seed ${seed} (${r.profile})`);
    for (const v of r.violations) console.log(`  ${v}`);
    const bug = bugName ? ` --bug ${bugName}` : "";
    console.log(`  replay: bun run sim --seeds 1 --seed ${seed} --steps ${steps} --disk ${disk}${bug} --trace`);
    break;
  }
  if ((k + 1) % 100 === 0) console.log(`${k + 1}/${seeds} seeds ok (${Math.round((performance.now() - t0) / 1000)} s)`);
}
const ran = failed > 0 ? totalSteps : totalSteps;
console.log(`disk=${disk} seeds=${seeds} first=${first} steps=${ran} violations=${failed} time=${((performance.now() - t0) / 1000).toFixed(1)}s`);
process.exit(failed > 0 ? 1 : 0);
