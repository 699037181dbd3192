// Fuzz-ish: random mutations of config.example.hcl (and random token soup) must either load or
// fail with a ConfigError — never another exception, never a hang. Seeded; the seed is printed
// on failure. EDGENODE_LONG=1 runs many more cases; EDGENODE_SEED=n replays one seed.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError } from "../../src/config/config_error.ts";
import { parseHcl } from "../../src/config/hcl.ts";
import { configFromSources } from "../../src/config/load.ts";
import { mulberry32 } from "../support/mulberry32.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const SEED = Number(process.env.EDGENODE_SEED ?? Math.floor(Math.random() * 2 ** 31));


const PIECES = ["{", "}", "[", "]", "=", ",", ":", '"', "\\", "\\u", "$", "${", "%{", "#", "//", "/*", "*/", "<<EOF\n", "<<-EOF\n", "\nEOF\n", "\n", " ", "\t", "-", "1", "1e9", "0.5", "true", "null", "x", "region", '"east"', "é", "😀", "\r\n", "\uFEFF", "__proto__", "constructor"];

function mutate(src: string, rnd: () => number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  let s = src;
  const edits = 1 + pick(4);
  for (let e = 0; e < edits; e++) {
    const i = pick(s.length + 1);
    switch (pick(6)) {
      case 0: // delete a run
        s = s.slice(0, i) + s.slice(i + 1 + pick(20));
        break;
      case 1: // insert a syntax piece
        s = s.slice(0, i) + PIECES[pick(PIECES.length)]! + s.slice(i);
        break;
      case 2: {
        // duplicate a run elsewhere
        const j = pick(s.length + 1);
        s = s.slice(0, i) + s.slice(j, j + pick(60)) + s.slice(i);
        break;
      }
      case 3: // truncate
        s = s.slice(0, i);
        break;
      case 4: // replace one character with a random code unit
        s = s.slice(0, i) + String.fromCharCode(pick(128)) + s.slice(i + 1);
        break;
      default: {
        // swap two lines
        const lines = s.split("\n");
        const a = pick(lines.length);
        const b = pick(lines.length);
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        s = lines.join("\n");
      }
    }
  }
  return s;
}

function check(text: string, seed: number, i: number, run: (t: string) => unknown): "ok" | "error" {
  const t0 = performance.now();
  try {
    run(text);
    return "ok";
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      throw new Error(`seed ${seed} case ${i}: ${(e as Error)?.stack ?? e}\ninput: ${JSON.stringify(text)}`);
    }
    expect(e.message).toMatch(/^[^\n]+:\d+:\d+: |^-dev|^\(no configuration files\)/);
    return "error";
  } finally {
    const ms = performance.now() - t0;
    if (ms > 500) throw new Error(`seed ${seed} case ${i}: took ${ms.toFixed(0)} ms\ninput: ${JSON.stringify(text)}`);
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
