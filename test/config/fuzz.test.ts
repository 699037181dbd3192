// Fuzz-ish: random mutations of config.example.hcl (and random token soup) must either load or
// fail with a ConfigError — never another exception, never a hang. Seeded; the seed is printed
// on failure. EDGENODE_LONG=1 runs many more cases; EDGENODE_SEED=n replays one seed.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError } from "../../src/config/config_error.ts";
import { parseHcl } from "../../src/config/hcl.ts";
import { configFromSources } from "../../src/config/load.ts";
import { mulberry32 } from "../support/mulberry32.ts";
import { mutate, PIECES } from "./config_mutation.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const SEED = Number(process.env.EDGENODE_SEED ?? Math.floor(Math.random() * 2 ** 31));

// How long a case may take is a benchmark figure (test/bench/config.bench.ts), not a bound here: a hang
// still fails, by the test's own timeout.
function check(text: string, seed: number, i: number, run: (t: string) => unknown): "ok" | "error" {
  try {
    run(text);
    return "ok";
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      throw new Error(`seed ${seed} case ${i}: ${(e as Error)?.stack ?? e}\ninput: ${JSON.stringify(text)}`);
    }
    expect(e.message).toMatch(/^[^\n]+:\d+:\d+: |^-dev|^\(no configuration files\)/);
    return "error";
  }
}

test(`mutations of config.example.hcl load or fail with a ConfigError (seed ${SEED})`, async () => {
  const example = await Bun.file(join(import.meta.dir, "../../config.example.hcl")).text();
  const rnd = mulberry32(SEED);
  const n = LONG ? 50_000 : 2_000;
  const seen = { ok: 0, error: 0 };
  const opts = { hostname: () => "h", interfaces: () => ({}) };
  for (let i = 0; i < n; i++) {
    const text = mutate(example, rnd);
    seen[check(text, SEED, i, (t) => configFromSources([{ file: "m.hcl", text: t }], opts))]++;
  }
  // Both outcomes must occur, or the mutations are not exercising anything.
  expect(seen.ok).toBeGreaterThan(0);
  expect(seen.error).toBeGreaterThan(0);
}, 60_000);

test(`random token soup parses or fails with a ConfigError (seed ${SEED})`, () => {
  const rnd = mulberry32(SEED ^ 0x5eed);
  const n = LONG ? 50_000 : 3_000;
  for (let i = 0; i < n; i++) {
    let text = "";
    const len = Math.floor(rnd() * 40);
    for (let k = 0; k < len; k++) text += `${PIECES[Math.floor(rnd() * PIECES.length)]}${rnd() < 0.3 ? " " : ""}`;
    check(text, SEED, i, (t) => parseHcl(t, "soup.hcl"));
  }
}, 60_000);
