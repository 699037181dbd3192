// A large restore builds its tables a slice at a time, letting the event loop turn (a raft leader's
// heartbeats run on it), and builds exactly what the one-go build does.
import { describe, expect, test } from "bun:test";
import { restoreTables, RestoreError } from "../../src/state/restore.ts";
import { treeEntries, treeFromSortedKeys, treeFromSortedKeysAsync } from "../../src/state/ordered_tree.ts";
import { mulberry32 } from "../support/mulberry32.ts";
import { freshSeeds, replayCommand } from "../sim/fresh_seeds.ts";

const FILE = "test/state/restore_slices.test.ts";
/** restoreTables sorts and builds a table of more records than this a slice at a time. */
const SLICE = 32_768;

function variable(path: string, i: number) {
  return { t: "vars", v: { Path: path, Items: { k: `v${i}` }, CreateIndex: i + 1, ModifyIndex: i + 1, CreateTime: 1, ModifyTime: 1 } };
}

/** The records of variables app/k0..app/k(n-1) in a seeded order. */
function shuffled(r: () => number, n: number) {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.map((i) => variable(`app/k${i}`, i));
}

/**
 * A seeded table of one to three slices, in a seeded order, sometimes with one path twice: it
 * comes out in key order, or is refused naming the path.
 */
async function sortedOrRefused(seed: number, replay: (seed: number) => string): Promise<void> {
  const r = mulberry32(seed);
  const n = SLICE + 1 + Math.floor(r() * 2 * SLICE);
  const records = shuffled(r, n);
  const dup = r() < 0.3 ? Math.floor(r() * n) : -1;
  if (dup >= 0) records.splice(Math.floor(r() * (n + 1)), 0, variable(`app/k${dup}`, n));
  const fail = (what: string): never => {
    console.log(`FAIL seed ${seed}; replay: ${replay(seed)}`);
    throw new Error(`seed ${seed} (${n} records, duplicate ${dup}): ${what}; replay: ${replay(seed)}`);
  };
  let tables: Awaited<ReturnType<typeof restoreTables>>;
  try {
    tables = await restoreTables(records, 9);
  } catch (e) {
    if (dup >= 0 && e instanceof RestoreError && e.message.includes(`two records with key "app/k${dup}"`)) return;
    return fail(`refused: ${(e as Error).message}`);
  }
  if (dup >= 0) fail("a duplicate path was not refused");
  const paths = [...treeEntries(tables.vars)].map((node) => node.k);
  const want = records.map((x) => x.v.Path).sort();
  if (paths.length !== want.length || paths.some((p, i) => p !== want[i])) fail("paths not in key order");
}

describe("restore in slices", () => {
  test("the sliced tree is the one-go tree, node for node, at and around every slice boundary", async () => {
    for (const n of [0, 1, 2, 7, 8, 9, 63, 64, 65, 1000]) {
      const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(5, "0")}`);
      const values = keys.map((_, i) => i);
      for (const slice of [1, 3, 8, 64, 5000]) {
        expect(await treeFromSortedKeysAsync(keys, values, slice)).toEqual(treeFromSortedKeys(keys, values));
      }
    }
  });

  test("an unsorted table of 150k variables comes out in key order, and the event loop turned meanwhile", async () => {
    const records = shuffled(mulberry32(7), 150_000);
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    // A plain array is read without an await: any turn of the loop is the tables' build yielding.
    const tables = await restoreTables(records, 9);
    ticking = false;
    expect(turns).toBeGreaterThan(10);
    const paths = [...treeEntries(tables.vars)].map((node) => node.k);
    expect(paths.length).toBe(150_000);
    const want = records.map((x) => x.v.Path).sort();
    expect(paths).toEqual(want);
  });

  test("seeded tables over a slice, sometimes with a path twice, come out in key order or are refused: seeds 1, 2", async () => {
    // Seed 1 has a path twice (73864 records), seed 2 none (80888).
    for (let seed = 1; seed <= 2; seed++) await sortedOrRefused(seed, (s) => replayCommand(FILE, s));
  }, 60_000);

  test("seeded tables over a slice, sometimes with a path twice, come out in key order or are refused: fresh seeds from the clock", async () => {
    const fresh = freshSeeds("restore in slices", FILE, 2);
    for (let seed = fresh.base; seed < fresh.base + fresh.count; seed++) await sortedOrRefused(seed, (s) => fresh.replay(s));
  }, 60_000);

  test("a duplicate path in a large unsorted table is refused", async () => {
    const records = Array.from({ length: 70_000 }, (_, i) => variable(`p/${(i * 7919) % 70_000}`, i));
    records.push(variable("p/123", 1));
    await expect(restoreTables(records, 9)).rejects.toThrow(RestoreError);
    await expect(restoreTables(records, 9)).rejects.toThrow(/two records with key "p\/123"/);
  });
  test("a table in a few ascending runs (paths written by a counter) comes out in key order; a path twice across runs is refused", async () => {
    // `c/0, c/1, …, c/9, c/10, …`: a new run at each power of ten, as a file written by a counter has.
    const records = Array.from({ length: 120_000 }, (_, i) => variable(`c/${i}`, i));
    const tables = await restoreTables(records, 9);
    const paths = [...treeEntries(tables.vars)].map((node) => node.k);
    expect(paths).toEqual(records.map((x) => x.v.Path).sort());
    // Each path's own record, not a neighbour's: the merge moved rows with their keys.
    for (const node of treeEntries(tables.vars)) expect((node.v as { Path: string }).Path).toBe(node.k);
    records.push(variable("c/4242", 1));
    await expect(restoreTables(records, 9)).rejects.toThrow(/two records with key "c\/4242"/);
  });
});
