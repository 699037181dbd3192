// Config loading cost: parse + merge + validate of config.example.hcl, beside JSON.parse of the
// same configuration as JSON (the floor any text format pays) measured in the same run, plus the
// first-ever load (cold JIT) that agent start-up actually pays. Run: bun test/bench/config.bench.ts
import { join } from "node:path";
import { parseHcl } from "../../src/config/hcl.ts";
import { configFromSources } from "../../src/config/load.ts";
import { configSchema } from "../../src/config/schema.ts";
import { fileTree, treeToPlain } from "../../src/config/tree.ts";
import { mutate } from "../config/config_mutation.ts";
import { mulberry32 } from "../support/mulberry32.ts";

const file = join(import.meta.dir, "../../config.example.hcl");
const text = await Bun.file(file).text();
const opts = { hostname: () => "bench", interfaces: () => ({}) };

const t0 = performance.now();
const cfg = configFromSources([{ file, text }], opts);
const cold = performance.now() - t0;
if (cfg.region !== "global") throw new Error("example did not load");
// The same configuration as the schema's input, written as JSON.
const json = JSON.stringify(treeToPlain(fileTree(parseHcl(text, file))));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median µs per call over `rounds` rounds of `n` calls. */
function measure(fn: () => unknown, n = 2000, rounds = 7): number {
  for (let i = 0; i < n; i++) fn(); // warm
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const s = performance.now();
    for (let i = 0; i < n; i++) fn();
    per.push(((performance.now() - s) * 1000) / n);
  }
  return median(per);
}

const rows: [string, number][] = [
  ["baseline: JSON.parse of the same config", measure(() => JSON.parse(json))],
  ["parseHcl(config.example.hcl)", measure(() => parseHcl(text, file))],
  ["zod schema on the plain value", measure(() => configSchema.parse(JSON.parse(json)))],
  ["configFromSources (parse+tree+merge+schema+defaults)", measure(() => configFromSources([{ file, text }], opts))],
];

console.log(`config.example.hcl: ${text.length} chars; first load (cold) ${cold.toFixed(2)} ms\n`);
console.log("| operation | median µs/op |");
console.log("|---|---:|");
for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(1)} |`);

// The slowest of many mutated configs (the fuzz test's inputs): a parse that blows up on some input shows
// here as a worst case far above the median, where a unit test's wall-clock bound would only flake.
const rnd = mulberry32(1);
const times: number[] = [];
for (let i = 0; i < 2000; i++) {
  const t = mutate(text, rnd);
  const s = performance.now();
  try {
    configFromSources([{ file, text: t }], opts);
  } catch {
    // refused input is timed too
  }
  times.push((performance.now() - s) * 1000);
}
times.sort((a, b) => a - b);
console.log(
  `\n2000 mutated configs (seed 1): median ${times[1000]!.toFixed(1)} µs, p99 ${times[1980]!.toFixed(1)} µs, max ${times[1999]!.toFixed(1)} µs`,
);
