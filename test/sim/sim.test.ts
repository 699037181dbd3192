// The deterministic simulation under bun test: many seeds must pass every
// invariant, and each deliberately broken variant must be caught within its seeds.
import { describe, expect, test } from "bun:test";
import { runSeed } from "./cluster.ts";
import { BUG_VARIANTS, DISK_BUG_VARIANTS } from "./variants.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const SEEDS = LONG ? 5000 : 400;
const STEPS = 2000;
// A per-run base so CI explores new seeds over time; printed on failure for replay.
const BASE = Number(process.env.EDGENODE_SIM_SEED ?? 1);

describe("simulation", () => {
  test(
    `${SEEDS} seeds x ${STEPS} steps: no invariant violated, liveness after healing`,
    async () => {
      let acked = 0;
      let reads = 0;
      for (let seed = BASE; seed < BASE + SEEDS; seed++) {
        const r = await runSeed({ seed, steps: STEPS });
        if (r.violations.length > 0) {
          throw new Error(
            `seed ${seed} (${r.profile}) violated:\n  ${r.violations.join("\n  ")}\nreplay: bun run sim --seeds 1 --seed ${seed} --trace`,
          );
        }
        acked += r.stats.acked;
        reads += r.stats.reads;
      }
      // The run must have done real work, or passing means nothing.
      expect(acked).toBeGreaterThan(SEEDS * 300);
      expect(reads).toBeGreaterThan(SEEDS * 50);
    },
    LONG ? 3_600_000 : 180_000,
  );

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
const DISK_SEEDS = LONG ? 2000 : 100;

describe("simulation on the real Wal (disk=sim)", () => {
  test(
    `${DISK_SEEDS} seeds x ${STEPS} steps: no invariant violated, liveness after healing`,
    async () => {
      const total = { acked: 0, reads: 0, crashes: 0, midWriteCrashes: 0, tornTails: 0 };
      for (let seed = BASE; seed < BASE + DISK_SEEDS; seed++) {
        const r = await runSeed({ seed, steps: STEPS, disk: "sim" });
        if (r.violations.length > 0) {
          throw new Error(
            `seed ${seed} (${r.profile}) violated:\n  ${r.violations.join("\n  ")}\nreplay: bun run sim --seeds 1 --seed ${seed} --disk sim --trace`,
          );
        }
        for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r.stats[k];
      }
      console.log(`disk=sim ${DISK_SEEDS} seeds from ${BASE}: ${JSON.stringify(total)}`);
      expect(total.acked).toBeGreaterThan(DISK_SEEDS * 300);
      expect(total.reads).toBeGreaterThan(DISK_SEEDS * 50);
      // Crashes inside writes and torn tails must actually happen, or the disk adds nothing.
      expect(total.midWriteCrashes).toBeGreaterThan(DISK_SEEDS / 2);
      expect(total.tornTails).toBeGreaterThan(DISK_SEEDS / 10);
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
    test(
      `the checker catches ${name}`,
      async () => {
        for (let seed = 1; seed <= 200; seed++) {
          const r = await runSeed({ seed, steps: STEPS, disk: "sim", ...BUG_VARIANTS[name] });
          if (r.violations.length > 0) {
            console.log(`${name} (disk=sim): caught at seed ${seed}: ${r.violations[0]}`);
            return;
          }
        }
        throw new Error(`${name} (disk=sim): not caught within 200 seeds`);
      },
      120_000,
    );
  }
});

describe("the checker catches broken variants", () => {
  for (const [name, variant] of Object.entries(BUG_VARIANTS)) {
    test(
      name,
      async () => {
        for (let seed = 1; seed <= 400; seed++) {
          const r = await runSeed({ seed, steps: STEPS, ...variant });
          if (r.violations.length > 0) {
            console.log(`${name}: caught at seed ${seed}: ${r.violations[0]}`);
            return;
          }
        }
        throw new Error(`${name}: not caught within 400 seeds`);
      },
      120_000,
    );
  }
});
