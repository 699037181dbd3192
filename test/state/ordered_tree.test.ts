import { describe, expect, test } from "bun:test";
import { treeCheck, treeDelete, treeEntries, treeFromSorted, treeGet, treeSet, treeSize, type Tree } from "../../src/state/ordered_tree.ts";
import { withSeed } from "./seeded_random.ts";

describe("persistent ordered tree", () => {
  test("matches a sorted Map model under random inserts and deletes, staying balanced", () => {
    withSeed("tree model", (rand) => {
      let t: Tree<number> = null;
      const model = new Map<string, number>();
      for (let i = 0; i < 5000; i++) {
        const k = `k${Math.floor(rand() * 800)}`;
        if (rand() < 0.35) {
          t = treeDelete(t, k);
          model.delete(k);
        } else {
          t = treeSet(t, k, i);
          model.set(k, i);
        }
        if (i % 500 === 0) expect(treeCheck(t)).toBe(model.size);
      }
      expect(treeCheck(t)).toBe(model.size);
      expect(treeSize(t)).toBe(model.size);
      const want = [...model.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
      expect([...treeEntries(t)].map((n) => [n.k, n.v])).toEqual(want);
      for (const [k, v] of want) expect(treeGet(t, k)).toBe(v);
      // Lower-bound iteration starts at the first key >= from.
      const from = "k5";
      expect([...treeEntries(t, from)].map((n) => n.k)).toEqual(want.map(([k]) => k).filter((k) => k >= from));
    });
  });

  test("old roots never change (structural sharing, not mutation)", () => {
    let t: Tree<string> = null;
    for (let i = 0; i < 100; i++) t = treeSet(t, `a${i}`, "old");
    const frozen = t;
    const before = [...treeEntries(frozen)].map((n) => [n.k, n.v]);
    for (let i = 0; i < 100; i += 2) t = treeDelete(t, `a${i}`);
    for (let i = 0; i < 100; i++) t = treeSet(t, `b${i}`, "new");
    t = treeSet(t, "a1", "changed");
    expect([...treeEntries(frozen)].map((n) => [n.k, n.v])).toEqual(before);
    expect(treeCheck(frozen)).toBe(100);
    expect(treeGet(t, "a1")).toBe("changed");
    expect(treeGet(frozen, "a1")).toBe("old");
  });

  test("deleting an absent key returns the same root", () => {
    const t = treeSet(treeSet(null, "a", 1), "c", 3);
    expect(treeDelete(t, "b")).toBe(t);
  });

  test("treeFromSorted builds a balanced tree and rejects unsorted input", () => {
    const rows: [string, number][] = [];
    for (let i = 0; i < 1000; i++) rows.push([`k${String(i).padStart(5, "0")}`, i]);
    const t = treeFromSorted(rows);
    expect(treeCheck(t)).toBe(1000);
    expect(() =>
      treeFromSorted([
        ["b", 1],
        ["a", 2],
      ]),
    ).toThrow(/ascending/);
  });
});
