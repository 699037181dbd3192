// A large restore builds its tables a slice at a time, letting the event loop turn (a raft leader's
// heartbeats run on it), and builds exactly what the one-go build does.
import { describe, expect, test } from "bun:test";
import { restoreTables, RestoreError } from "../../src/state/restore.ts";
import { treeEntries, treeFromSortedKeys, treeFromSortedKeysAsync } from "../../src/state/ordered_tree.ts";
import { mulberry32 } from "../support/mulberry32.ts";

function variable(path: string, i: number) {
  return { t: "vars", v: { Path: path, Items: { k: `v${i}` }, CreateIndex: i + 1, ModifyIndex: i + 1, CreateTime: 1, ModifyTime: 1 } };
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
    const r = mulberry32(7);
    const n = 150_000;
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const records = order.map((i) => variable(`app/k${i}`, i));
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
    expect(paths.length).toBe(n);
    const want = records.map((x) => x.v.Path).sort();
    expect(paths).toEqual(want);
  });

  test("a duplicate path in a large unsorted table is refused", async () => {
    const records = Array.from({ length: 70_000 }, (_, i) => variable(`p/${(i * 7919) % 70_000}`, i));
    records.push(variable("p/123", 1));
    await expect(restoreTables(records, 9)).rejects.toThrow(RestoreError);
    await expect(restoreTables(records, 9)).rejects.toThrow(/two records with key "p\/123"/);
  });
});
