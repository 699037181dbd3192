// A persistent (path-copying) AVL tree keyed by string: every update returns a
// new root and shares all untouched nodes with the old one, so holding an old
// root is an O(1), never-changing point-in-time view of a table.
import { assert } from "../lib/assert.ts";

export interface TreeNode<V> {
  readonly k: string;
  readonly v: V;
  readonly l: TreeNode<V> | null;
  readonly r: TreeNode<V> | null;
  /** Height of the subtree (leaf = 1). */
  readonly h: number;
  /** Number of entries in the subtree, so a table's count is O(1). */
  readonly n: number;
}

export type Tree<V> = TreeNode<V> | null;

const height = <V>(t: Tree<V>): number => (t === null ? 0 : t.h);
export const treeSize = <V>(t: Tree<V>): number => (t === null ? 0 : t.n);

function node<V>(k: string, v: V, l: Tree<V>, r: Tree<V>): TreeNode<V> {
  const hl = height(l);
  const hr = height(r);
  return { k, v, l, r, h: Math.max(hl, hr) + 1, n: treeSize(l) + treeSize(r) + 1 };
}

/** Rebuild a node whose children differ in height by at most 2 so that they differ by at most 1. */
function balance<V>(k: string, v: V, l: Tree<V>, r: Tree<V>): TreeNode<V> {
  const hl = height(l);
  const hr = height(r);
  if (hl > hr + 1) {
    const L = l as TreeNode<V>;
    if (height(L.l) >= height(L.r)) return node(L.k, L.v, L.l, node(k, v, L.r, r));
    const LR = L.r as TreeNode<V>;
    return node(LR.k, LR.v, node(L.k, L.v, L.l, LR.l), node(k, v, LR.r, r));
  }
  if (hr > hl + 1) {
    const R = r as TreeNode<V>;
    if (height(R.r) >= height(R.l)) return node(R.k, R.v, node(k, v, l, R.l), R.r);
    const RL = R.l as TreeNode<V>;
    return node(RL.k, RL.v, node(k, v, l, RL.l), node(R.k, R.v, RL.r, R.r));
  }
  return node(k, v, l, r);
}

export function treeGet<V>(t: Tree<V>, k: string): V | undefined {
  while (t !== null) {
    if (k < t.k) t = t.l;
    else if (k > t.k) t = t.r;
    else return t.v;
  }
  return undefined;
}

/** Insert or replace; returns the new root (the old root is unchanged). */
export function treeSet<V>(t: Tree<V>, k: string, v: V): TreeNode<V> {
  if (t === null) return { k, v, l: null, r: null, h: 1, n: 1 };
  if (k < t.k) return balance(t.k, t.v, treeSet(t.l, k, v), t.r);
  if (k > t.k) return balance(t.k, t.v, t.l, treeSet(t.r, k, v));
  return { k, v, l: t.l, r: t.r, h: t.h, n: t.n };
}

function removeMin<V>(t: TreeNode<V>): { min: TreeNode<V>; rest: Tree<V> } {
  if (t.l === null) return { min: t, rest: t.r };
  const { min, rest } = removeMin(t.l);
  return { min, rest: balance(t.k, t.v, rest, t.r) };
}

/** Remove `k` if present; returns the new root (the same root when absent). */
export function treeDelete<V>(t: Tree<V>, k: string): Tree<V> {
  if (t === null) return null;
  if (k < t.k) {
    const l = treeDelete(t.l, k);
    return l === t.l ? t : balance(t.k, t.v, l, t.r);
  }
  if (k > t.k) {
    const r = treeDelete(t.r, k);
    return r === t.r ? t : balance(t.k, t.v, t.l, r);
  }
  if (t.l === null) return t.r;
  if (t.r === null) return t.l;
  const { min, rest } = removeMin(t.r);
  return balance(min.k, min.v, t.l, rest);
}

/** Entries with key >= `from` (all when undefined) in ascending key order. */
export function* treeEntries<V>(t: Tree<V>, from?: string): Generator<TreeNode<V>, void, undefined> {
  // An explicit stack: AVL height is at most ~1.44 log2(n), so this stays tiny.
  const stack: TreeNode<V>[] = [];
  let cur = t;
  while (cur !== null) {
    if (from !== undefined && cur.k < from) {
      cur = cur.r;
    } else {
      stack.push(cur);
      cur = cur.l;
    }
  }
  while (stack.length > 0) {
    const top = stack.pop() as TreeNode<V>;
    yield top;
    cur = top.r;
    while (cur !== null) {
      stack.push(cur);
      cur = cur.l;
    }
  }
}

/** Build a balanced tree in O(n) from entries already sorted by strictly ascending key. */
export function treeFromSorted<V>(entries: readonly (readonly [string, V])[]): Tree<V> {
  return treeFromSortedKeys(
    entries.map((e) => e[0]),
    entries.map((e) => e[1]),
  );
}

/** treeFromSorted over parallel arrays (keys[i] holds values[i]): no tuple per entry. */
export function treeFromSortedKeys<V>(keys: readonly string[], values: readonly V[]): Tree<V> {
  assert(keys.length === values.length, "treeFromSortedKeys: as many keys as values");
  for (let i = 1; i < keys.length; i++) {
    assert((keys[i - 1] as string) < (keys[i] as string), "treeFromSorted: keys must be strictly ascending");
  }
  const build = (lo: number, hi: number): Tree<V> => {
    if (lo >= hi) return null;
    const mid = (lo + hi) >>> 1;
    const l = build(lo, mid);
    const r = build(mid + 1, hi);
    const hl = l === null ? 0 : l.h;
    const hr = r === null ? 0 : r.h;
    return { k: keys[mid] as string, v: values[mid] as V, l, r, h: Math.max(hl, hr) + 1, n: hi - lo };
  };
  return build(0, keys.length);
}

/** Let timers and I/O run: a turn of the event loop, not a microtask. */
export function pause(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * treeFromSortedKeys in slices of at most `slice` entries, with a turn of the event loop between them:
 * a million entries take a quarter of a second or more in one go, long enough for a raft leader that
 * also has to send heartbeats to be voted out (it was, once, while building a 1 GiB restore).
 */
export async function treeFromSortedKeysAsync<V>(keys: readonly string[], values: readonly V[], slice = 32_768): Promise<Tree<V>> {
  assert(keys.length === values.length, "treeFromSortedKeys: as many keys as values");
  assert(Number.isSafeInteger(slice) && slice > 0, "slice is a positive integer");
  for (let lo = 1; lo < keys.length; lo += slice) {
    const hi = Math.min(keys.length, lo + slice);
    for (let i = lo; i < hi; i++) assert((keys[i - 1] as string) < (keys[i] as string), "treeFromSorted: keys must be strictly ascending");
    if (hi < keys.length) await pause();
  }
  const sync = (lo: number, hi: number): Tree<V> => {
    if (lo >= hi) return null;
    const mid = (lo + hi) >>> 1;
    const l = sync(lo, mid);
    const r = sync(mid + 1, hi);
    const hl = l === null ? 0 : l.h;
    const hr = r === null ? 0 : r.h;
    return { k: keys[mid] as string, v: values[mid] as V, l, r, h: Math.max(hl, hr) + 1, n: hi - lo };
  };
  // The same shape as treeFromSortedKeys: the same split points, whole subtrees of at most `slice` at once.
  const build = async (lo: number, hi: number): Promise<Tree<V>> => {
    if (hi - lo <= slice) {
      const t = sync(lo, hi);
      await pause();
      return t;
    }
    const mid = (lo + hi) >>> 1;
    const l = await build(lo, mid);
    const r = await build(mid + 1, hi);
    const hl = l === null ? 0 : l.h;
    const hr = r === null ? 0 : r.h;
    return { k: keys[mid] as string, v: values[mid] as V, l, r, h: Math.max(hl, hr) + 1, n: hi - lo };
  };
  return build(0, keys.length);
}

/** Check the AVL, order and size invariants; for tests. Returns the number of entries. */
export function treeCheck<V>(t: Tree<V>): number {
  const walk = (x: Tree<V>, lo: string | undefined, hi: string | undefined): number => {
    if (x === null) return 0;
    assert(lo === undefined || x.k > lo, "tree order violated");
    assert(hi === undefined || x.k < hi, "tree order violated");
    const dl = height(x.l);
    const dr = height(x.r);
    assert(Math.abs(dl - dr) <= 1, "tree balance violated");
    assert(x.h === Math.max(dl, dr) + 1, "tree height field wrong");
    const n = walk(x.l, lo, x.k) + walk(x.r, x.k, hi) + 1;
    assert(x.n === n, "tree size field wrong");
    return n;
  };
  return walk(t, undefined, undefined);
}
