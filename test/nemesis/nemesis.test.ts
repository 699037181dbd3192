// A short nemesis over real processes that must pass (every fault kind), and a self-test: with
// ?stale reads during partitions the same checks must fail, so a passing run means something.
// EDGENODE_LONG=1 runs the long variant (NEMESIS_TIME, default 10m, 5 servers).
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { parseDuration } from "../../src/lib/duration.ts";
import { FAULT_KINDS } from "./faults.ts";
import { runNemesis } from "./nemesis.ts";

const seed = Number(process.env.NEMESIS_SEED ?? Date.now() % 1_000_000);
const long = process.env.EDGENODE_LONG === "1";

test(
  `nemesis: every fault kind, linearizable, no lost writes, converged (seed ${seed})`,
  async () => {
    const timeMs = long ? parseDuration(process.env.NEMESIS_TIME ?? "10m") : 45_000;
    const short = long ? {} : { faultHoldMs: [1000, 2500] as [number, number], quietMs: [300, 1000] as [number, number] };
    const r = await runNemesis({ timeMs, seed, servers: long ? 5 : 3, quiet: !long, ...short });
    if (!r.ok) console.error(`nemesis failed, seed ${seed}; replay: ${r.replay}; kept ${r.dir}\n${r.failures.join("\n")}`);
    expect(r.failures).toEqual([]);
    expect(r.check?.verdict).toBe("ok");
    // The run did real work: enough acknowledged operations and every fault kind at least once.
    expect((r.operations["write:ok"] ?? 0) + (r.operations["cas:ok"] ?? 0)).toBeGreaterThan(100);
    expect(Object.keys(r.faults).sort()).toEqual([...FAULT_KINDS].sort());
  },
  (long ? parseDuration(process.env.NEMESIS_TIME ?? "10m") : 45_000) + 120_000,
);

test(`nemesis self-test: stale reads under partitions are caught (seed ${seed})`, async () => {
  const r = await runNemesis({
    timeMs: 12_000,
    seed,
    servers: 3,
    staleReads: true,
    faults: ["isolate-leader", "partition-halves", "one-way"],
    quiet: true,
    checkTimeoutMs: 30_000,
  });
  if (r.ok) console.error(`stale reads were not caught, seed ${seed}; replay: ${r.replay}`);
  expect(r.ok).toBe(false);
  expect(r.check?.verdict).toBe("illegal");
  rmSync(r.dir, { recursive: true, force: true }); // failing was the point: nothing to keep
}, 90_000);
