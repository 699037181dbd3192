// The deterministic simulation under bun test: fixed seeds and a fresh range picked from the clock must
// pass every invariant, in memory and on the real Wal over a SimDisk; seeds that once failed stay as
// named cases; and each deliberately broken variant must be caught within its seeds.
import { describe, expect, test } from "bun:test";
import { runSeed } from "./cluster.ts";
import type { DiskMode } from "./durable_store.ts";
import { freshSeeds } from "./fresh_seeds.ts";
import { BUG_VARIANTS, DISK_BUG_VARIANTS } from "./variants.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const STEPS = 2000;
const FILE = "test/sim/sim.test.ts";

type Totals = { acked: number; reads: number; crashes: number; midWriteCrashes: number; tornTails: number };

/** Run `count` seeds from `first`; throw at the first violation with its one-line replay. */
async function runRange(first: number, count: number, disk: DiskMode): Promise<Totals> {
  const total: Totals = { acked: 0, reads: 0, crashes: 0, midWriteCrashes: 0, tornTails: 0 };
  for (let seed = first; seed < first + count; seed++) {
    const r = await runSeed({ seed, steps: STEPS, disk });
    if (r.violations.length > 0) {
      const replay = `bun run sim --seeds 1 --seed ${seed} --steps ${STEPS} --disk ${disk} --trace`;
      console.log(`FAIL seed ${seed} (disk=${disk}); replay: ${replay}`);
      throw new Error(`seed ${seed} (${r.profile}) violated:\n  ${r.violations.join("\n  ")}\nreplay: ${replay}`);
    }
    for (const k of Object.keys(total) as (keyof Totals)[]) total[k] += r.stats[k];
  }
  return total;
}

/** The run must have done real work, or passing means nothing. */
function expectWork(total: Totals, seeds: number): void {
  expect(total.acked).toBeGreaterThan(seeds * 300);
  expect(total.reads).toBeGreaterThan(seeds * 50);
}

/** On the simulated disk, crashes inside writes and torn tails must actually happen, or the disk adds nothing. */
function expectDiskFaults(total: Totals, seeds: number): void {
  expect(total.midWriteCrashes).toBeGreaterThan(seeds / 2);
  expect(total.tornTails).toBeGreaterThan(seeds / 10);
}

/**
 * `node` installed two snapshots in one step, the second newer: a file received while the older
 * install's Ready waited. Without it the seed no longer exercises what it once caught.
 */
function twoInstallsInOneStep(trace: string[], node: string): boolean {
  const installs = trace.map((l) => l.match(new RegExp(`^t=(\\d+) ${node} installed snapshot (\\d+):`))).filter((m) => m !== null);
  return installs.some((m, i) => i > 0 && m[1] === installs[i - 1]![1] && Number(m[2]) > Number(installs[i - 1]![2]));
}

// Seeds 1..FIXED every run; FRESH more from a base picked from the clock (EDGENODE_SIM_SEED to replay).
const FIXED = LONG ? 5000 : 250;
const FRESH = LONG ? 5000 : 200;

describe("simulation", () => {
  test(
    `seeds 1..${FIXED} x ${STEPS} steps: no invariant violated, liveness after healing`,
    async () => expectWork(await runRange(1, FIXED, "mem"), FIXED),
    LONG ? 3_600_000 : 180_000,
  );

  test(
    `${FRESH} fresh seeds from the clock x ${STEPS} steps: no invariant violated, liveness after healing`,
    async () => {
      const fresh = freshSeeds("simulation (disk=mem)", FILE, FRESH, "EDGENODE_SIM_SEED");
      expectWork(await runRange(fresh.base, fresh.count, "mem"), fresh.count);
    },
    LONG ? 3_600_000 : 180_000,
  );

  test("seed 61826234: a snapshot that arrives while an older one's install waits (async Ready, pause) is installed next", async () => {
    const r = await runSeed({ seed: 61826234, steps: STEPS, trace: true });
    expect(r.violations).toEqual([]);
    expect(twoInstallsInOneStep(r.trace, "n1")).toBe(true);
  });

  test("seed 61835402: the same for a joining voter (n4) paused between two snapshots", async () => {
    const r = await runSeed({ seed: 61835402, steps: STEPS, trace: true });
    expect(r.violations).toEqual([]);
    expect(twoInstallsInOneStep(r.trace, "n4")).toBe(true);
  });

  test("same seed, same run (determinism)", async () => {
    const a = await runSeed({ seed: 4242, steps: 1500 });
    const b = await runSeed({ seed: 4242, steps: 1500 });
    expect(b.stats).toEqual(a.stats);
    expect(b.steps).toBe(a.steps);
  });
});

// The same simulation with every server's log and hard state on the real Wal and StableStore over a
// SimDisk: crashes land inside writes (at a pending sync), lose the unsynced bytes or tear them, and
// the server restarts on what the Wal recovers.
const DISK_FIXED = LONG ? 2000 : 50;
const DISK_FRESH = LONG ? 2000 : 60;

describe("simulation on the real Wal (disk=sim)", () => {
  test(
    `seeds 1..${DISK_FIXED} x ${STEPS} steps: no invariant violated, liveness after healing`,
    async () => {
      const total = await runRange(1, DISK_FIXED, "sim");
      console.log(`disk=sim seeds 1..${DISK_FIXED}: ${JSON.stringify(total)}`);
      expectWork(total, DISK_FIXED);
      expectDiskFaults(total, DISK_FIXED);
    },
    LONG ? 3_600_000 : 180_000,
  );

  test(
    `${DISK_FRESH} fresh seeds from the clock x ${STEPS} steps: no invariant violated, liveness after healing`,
    async () => {
      const fresh = freshSeeds("simulation (disk=sim)", FILE, DISK_FRESH, "EDGENODE_SIM_SEED");
      const total = await runRange(fresh.base, fresh.count, "sim");
      console.log(`disk=sim ${fresh.count} seeds from ${fresh.base}: ${JSON.stringify(total)}`);
      expectWork(total, fresh.count);
      expectDiskFaults(total, fresh.count);
    },
    LONG ? 3_600_000 : 180_000,
  );

  test("same seed, same run (determinism)", async () => {
    const a = await runSeed({ seed: 4242, steps: 1500, disk: "sim" });
    const b = await runSeed({ seed: 4242, steps: 1500, disk: "sim" });
    expect(b.stats).toEqual(a.stats);
    expect(b.steps).toBe(a.steps);
  });

  for (const name of DISK_BUG_VARIANTS) {
    test(`the checker catches ${name}`, async () => {
      for (let seed = 1; seed <= 200; seed++) {
        const r = await runSeed({ seed, steps: STEPS, disk: "sim", ...BUG_VARIANTS[name] });
        if (r.violations.length > 0) {
          console.log(`${name} (disk=sim): caught at seed ${seed}: ${r.violations[0]}`);
          return;
        }
      }
      throw new Error(`${name} (disk=sim): not caught within 200 seeds`);
    }, 120_000);
  }
});

describe("the checker catches broken variants", () => {
  for (const [name, variant] of Object.entries(BUG_VARIANTS)) {
    test(name, async () => {
      for (let seed = 1; seed <= 400; seed++) {
        const r = await runSeed({ seed, steps: STEPS, ...variant });
        if (r.violations.length > 0) {
          console.log(`${name}: caught at seed ${seed}: ${r.violations[0]}`);
          return;
        }
      }
      throw new Error(`${name}: not caught within 400 seeds`);
    }, 120_000);
  }
});
