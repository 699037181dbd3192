// The deterministic simulation under bun test: many seeds must pass every
// invariant, and each deliberately broken variant must be caught within its seeds.
import { describe, expect, test } from "bun:test";
import { runSeed } from "./cluster.ts";
import { BUG_VARIANTS } from "./variants.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const SEEDS = LONG ? 5000 : 400;
const STEPS = 2000;
// A per-run base so CI explores new seeds over time; printed on failure for replay.
const BASE = Number(process.env.EDGENODE_SIM_SEED ?? 1);

describe("simulation", () => {
  test(
    `${SEEDS} seeds x ${STEPS} steps: no invariant violated, liveness after healing`,
    () => {
      let acked = 0;
      let reads = 0;
      for (let seed = BASE; seed < BASE + SEEDS; seed++) {
        const r = runSeed({ seed, steps: STEPS });
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

  test("same seed, same run (determinism)", () => {
    const a = runSeed({ seed: 4242, steps: 1500 });
    const b = runSeed({ seed: 4242, steps: 1500 });
    expect(b.stats).toEqual(a.stats);
    expect(b.steps).toBe(a.steps);
  });
});

describe("the checker catches broken variants", () => {
  for (const [name, variant] of Object.entries(BUG_VARIANTS)) {
    test(
      name,
      () => {
        for (let seed = 1; seed <= 400; seed++) {
          const r = runSeed({ seed, steps: STEPS, ...variant });
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
