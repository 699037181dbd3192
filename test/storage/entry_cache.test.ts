import { describe, expect, test } from "bun:test";
import type { Entry } from "../../src/raft/storage.ts";
import { entrySize } from "../../src/raft/storage.ts";
import { EntryCache } from "../../src/storage/entry_cache.ts";
import { mulberry32 } from "../support/mulberry32.ts";
import { freshSeeds, replayCommand } from "../sim/fresh_seeds.ts";

const FILE = "test/storage/entry_cache.test.ts";

const ent = (index: number, len: number): Entry => ({ index, term: 1, type: 0, data: new Uint8Array(len) });

/** The plain model: the newest entries whose sizes fit maxBytes (at least one), contiguous. */
class Model {
  items: Entry[] = [];
  constructor(
    private readonly maxBytes: number,
    private readonly maxEntries: number,
  ) {}
  add(es: Entry[]): void {
    if (this.maxBytes === 0 || es.length === 0) return;
    const f = (es[0] as Entry).index;
    const first = this.items[0]?.index ?? -1;
    if (first < 0 || f < first || f > first + this.items.length) this.items = [];
    else this.items = this.items.slice(0, f - first);
    this.items.push(...es);
    this.trim();
  }
  trim(): void {
    let bytes = this.items.reduce((n, e) => n + entrySize(e), 0);
    while ((bytes > this.maxBytes || this.items.length > this.maxEntries) && this.items.length > 1) {
      bytes -= entrySize(this.items.shift() as Entry);
    }
  }
  truncateAfter(last: number): void {
    this.items = this.items.filter((e) => e.index <= last);
  }
  dropThrough(index: number): void {
    this.items = this.items.filter((e) => e.index > index);
  }
}

/** One cache of a seeded size against the model through 400 seeded operations. */
function checkAgainstModel(seed: number, replay: (seed: number) => string): void {
  const rand = mulberry32(seed);
  const r = { int: (n: number) => Math.floor(rand() * n) };
  const max = [0, 200, 5000, 100_000][r.int(4)] as number;
  const maxEntries = [1, 7, 100, 5000][r.int(4)] as number;
  const c = new EntryCache(max, maxEntries);
  const m = new Model(max, maxEntries);
  let next = 1 + r.int(1000);
  for (let step = 0; step < 400; step++) {
    const op = r.int(10);
    if (op < 6) {
      // Usually continue; sometimes overwrite a suffix or jump.
      const first = r.int(8) === 0 ? next + r.int(5) : r.int(8) === 0 ? Math.max(1, next - r.int(20)) : next;
      const es = Array.from({ length: 1 + r.int(70) }, (_, k) => ent(first + k, r.int(60)));
      c.add(es);
      m.add(es);
      next = first + es.length;
    } else if (op < 8) {
      const last = next - 1 - r.int(30);
      c.truncateAfter(last);
      m.truncateAfter(last);
    } else {
      const through = next - 1 - r.int(200);
      c.dropThrough(through);
      m.dropThrough(through);
    }
    const lo = (m.items[0]?.index ?? next) - 80;
    for (let i = lo; i < next + 5; i++) {
      const want = m.items.find((e) => e.index === i);
      if (c.get(i) !== want) {
        console.log(`FAIL seed ${seed}; replay: ${replay(seed)}`);
        throw new Error(`seed ${seed} step ${step} (max ${max} B, ${maxEntries} entries): get(${i}) differs; replay: ${replay(seed)}`);
      }
    }
  }
}

describe("EntryCache", () => {
  test("keeps the newest entries within its byte bound, at least one", () => {
    const c = new EntryCache(100);
    c.add([ent(1, 10), ent(2, 10), ent(3, 10)]); // 34 B each
    expect(c.get(1)).toBeUndefined();
    expect(c.get(2)?.index).toBe(2);
    expect(c.get(3)?.index).toBe(3);
    c.add([ent(4, 500)]);
    expect(c.get(3)).toBeUndefined();
    expect(c.get(4)?.index).toBe(4);
  });

  test("keeps at most maxEntries, whatever their size", () => {
    const c = new EntryCache(1 << 20, 2);
    c.add([ent(1, 1), ent(2, 1), ent(3, 1)]);
    expect(c.get(1)).toBeUndefined();
    expect(c.get(2)?.index).toBe(2);
    expect(c.get(3)?.index).toBe(3);
  });

  test("a zero bound caches nothing", () => {
    const c = new EntryCache(0);
    c.add([ent(1, 1)]);
    expect(c.get(1)).toBeUndefined();
  });

  test("matches the plain model under random adds, truncations, drops and growth: seeds 1..50", () => {
    for (let seed = 1; seed <= 50; seed++) checkAgainstModel(seed, (s) => replayCommand(FILE, s));
  });

  test("matches the plain model under random adds, truncations, drops and growth: fresh seeds from the clock", () => {
    const fresh = freshSeeds("EntryCache against the model", FILE, 50);
    for (let seed = fresh.base; seed < fresh.base + fresh.count; seed++) checkAgainstModel(seed, (s) => fresh.replay(s));
  });
});
