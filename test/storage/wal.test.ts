// The write-ahead log's LogStorage semantics: append/replace, reads across segments and the cache,
// compaction, snapshot install, limits, and that all of it survives a reopen.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompactedError, UnavailableError } from "../../src/raft/storage.ts";
import { Wal } from "../../src/storage/wal.ts";
import { entryProblem, makeEntries } from "./fixtures/entries.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-wal-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `w${n++}`);
const quiet = () => {};
const cfg = { servers: [{ id: "a", address: "127.0.0.1:1", voter: true }] };

async function expectAll(w: Wal, lo: number, hi: number) {
  const es = w.entries(lo, hi + 1, Number.MAX_SAFE_INTEGER);
  expect(es.length).toBe(hi - lo + 1);
  for (const [k, e] of es.entries()) {
    expect(e.index).toBe(lo + k);
    expect(entryProblem(e)).toBeUndefined();
    expect(w.term(e.index)).toBe(e.term);
  }
}

describe("wal", () => {
  test("cached entries stay intact whether their data owned its buffer or was cut from a shared one", async () => {
    // Entries cut from one receive buffer are cached as views of their own encoded batch; entries
    // owning their buffers are cached as given while the batch goes through a reused buffer. Either
    // way a later append (reusing that buffer) must not change what the cache returns.
    const w = await Wal.open(fresh(), { log: quiet, cacheBytes: 64 << 20 });
    const mk = (first: number, count: number, shared: boolean) => {
      const es = makeEntries(first, count, 1);
      if (!shared) return es;
      const big = new Uint8Array(es.reduce((a, e) => a + e.data.length, 0) + 1000);
      let at = 500;
      return es.map((e) => {
        big.set(e.data, at);
        const data = big.subarray(at, at + e.data.length);
        at += e.data.length;
        return { ...e, data };
      });
    };
    for (let b = 0; b < 40; b++) await w.append(mk(w.lastIndex() + 1, 1 + (b % 7) * 9, b % 3 === 0));
    await expectAll(w, 1, w.lastIndex());
    // The cached ones are the same objects or views of a batch of their own, never of the scratch buffer.
    for (const e of w.entries(1, w.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) expect(e.data.buffer.byteLength).toBeLessThan(256 * 1024);
    await w.close();
  });

  test("empty log contract", async () => {
    const w = await Wal.open(fresh(), { log: quiet });
    expect(w.firstIndex()).toBe(1);
    expect(w.lastIndex()).toBe(0);
    expect(w.term(0)).toBe(0);
    expect(w.entries(1, 1, 100)).toEqual([]);
    expect(() => w.term(1)).toThrow(UnavailableError);
    expect(w.snapshotMeta()).toEqual({ index: 0, term: 0, config: { servers: [] } });
    expect(w.initialState().hardState).toEqual({ term: 0, vote: "", commit: 0 });
    await w.close();
  });

  test("append, replace a suffix across segments, reopen", async () => {
    const dir = fresh();
    let w = await Wal.open(dir, { segmentBytes: 4096, log: quiet });
    for (let b = 0; b < 40; b++) await w.append(makeEntries(w.lastIndex() + 1, 7, 1));
    expect(w.lastIndex()).toBe(280);
    expect(w.segmentPaths().length).toBeGreaterThan(5);
    await w.append(makeEntries(50, 3, 2)); // conflict far back, in an older segment
    expect(w.lastIndex()).toBe(52);
    expect(w.term(49)).toBe(1);
    expect(w.term(50)).toBe(2);
    await w.append(makeEntries(53, 10, 2));
    await expectAll(w, 1, 62);
    await w.setHardState({ term: 2, vote: "a", commit: 40 });
    await w.close();
    w = await Wal.open(dir, { segmentBytes: 4096, cacheBytes: 0, log: quiet });
    expect(w.lastIndex()).toBe(62);
    await expectAll(w, 1, 62);
    expect(w.initialState().hardState).toEqual({ term: 2, vote: "a", commit: 40 });
    // Truncating at or below commit is refused.
    await expect(w.append(makeEntries(40, 1, 3))).rejects.toThrow(/commit/);
    await w.close();
  });

  test("entries honours maxBytes, but returns at least one", async () => {
    for (const cacheBytes of [0, 1 << 20]) {
      const w = await Wal.open(fresh(), { cacheBytes, log: quiet });
      await w.append(makeEntries(1, 50, 1));
      expect(w.entries(1, 51, 0).length).toBe(1);
      const some = w.entries(1, 51, 2000);
      const size = some.reduce((s, e) => s + e.data.length + 24, 0);
      expect(size).toBeLessThanOrEqual(2000);
      expect(size + w.entries(1 + some.length, 2 + some.length, 0)[0]!.data.length + 24).toBeGreaterThan(2000);
      expect(() => w.entries(1, 52, 100)).toThrow(UnavailableError);
      await w.close();
    }
  });

  test("setSnapshot + compact keep term(first-1) and survive reopen; segments are deleted", async () => {
    const dir = fresh();
    let w = await Wal.open(dir, { segmentBytes: 4096, log: quiet });
    for (let b = 0; b < 30; b++) await w.append(makeEntries(w.lastIndex() + 1, 5, 1 + Math.floor(b / 10)));
    const before = w.segmentPaths().length;
    await expect(w.compact(100)).rejects.toThrow(/snapshot/);
    // A failed assertion does not poison the log (only disk errors do).
    await w.setSnapshot({ index: 120, term: w.term(120), config: cfg });
    await w.compact(100);
    expect(w.firstIndex()).toBe(101);
    expect(w.term(100)).toBe(w.term(100));
    expect(() => w.term(99)).toThrow(CompactedError);
    expect(() => w.entries(100, 101, 10)).toThrow(CompactedError);
    expect(w.segmentPaths().length).toBeLessThan(before);
    const t100 = w.term(100);
    await w.close();
    w = await Wal.open(dir, { segmentBytes: 4096, log: quiet });
    expect(w.firstIndex()).toBe(101);
    expect(w.term(100)).toBe(t100);
    expect(w.snapshotMeta()).toEqual({ index: 120, term: w.term(120), config: cfg });
    expect(w.initialState().config).toEqual(cfg);
    await expectAll(w, 101, 150);
    // Compact everything: empty log that continues at 151.
    await w.setSnapshot({ index: 150, term: w.term(150), config: cfg });
    await w.compact(150);
    expect(w.firstIndex()).toBe(151);
    expect(w.lastIndex()).toBe(150);
    await w.append(makeEntries(151, 2, 3));
    await w.close();
    w = await Wal.open(dir, { segmentBytes: 4096, log: quiet });
    await expectAll(w, 151, 152);
    await w.close();
  });

  test("entries replaced by a conflicting append stay gone after that append is compacted and the log reopens", async () => {
    // Found by the crash loop: replay skipped a batch lying wholly at or below the compaction
    // point, and with it the suffix truncation that batch records, so the stale entries it had
    // replaced came back on open.
    for (const sameSegment of [true, false]) {
      const dir = fresh();
      let w = await Wal.open(dir, { segmentBytes: sameSegment ? 1 << 20 : 4096, log: quiet });
      await w.append(makeEntries(1, 10, 1));
      if (!sameSegment) while (w.segmentPaths().length < 2) await w.append(makeEntries(w.lastIndex() + 1, 5, 1));
      const staleLast = w.lastIndex();
      const from = staleLast - 3;
      await w.append(makeEntries(from, 2, 2)); // replaces from..staleLast with two entries
      expect(w.lastIndex()).toBe(from + 1);
      await w.setSnapshot({ index: from + 1, term: 2, config: cfg });
      await w.compact(from + 1);
      expect(w.firstIndex()).toBe(from + 2);
      expect(w.lastIndex()).toBe(from + 1);
      await w.close();
      w = await Wal.open(dir, { segmentBytes: sameSegment ? 1 << 20 : 4096, log: quiet });
      expect({ first: w.firstIndex(), last: w.lastIndex() }).toEqual({ first: from + 2, last: from + 1 });
      // The log continues from the compaction point, and that too survives a reopen.
      await w.append(makeEntries(from + 2, 1, 3));
      await w.close();
      w = await Wal.open(dir, { segmentBytes: sameSegment ? 1 << 20 : 4096, log: quiet });
      expect({ first: w.firstIndex(), last: w.lastIndex(), term: w.term(from + 2) }).toEqual({ first: from + 2, last: from + 2, term: 3 });
      await w.close();
    }
  });

  test("installSnapshot replaces the log", async () => {
    const dir = fresh();
    let w = await Wal.open(dir, { segmentBytes: 4096, log: quiet });
    for (let b = 0; b < 20; b++) await w.append(makeEntries(w.lastIndex() + 1, 5, 1));
    await w.installSnapshot({ index: 500, term: 4, config: cfg });
    expect(w.firstIndex()).toBe(501);
    expect(w.lastIndex()).toBe(500);
    expect(w.term(500)).toBe(4);
    expect(w.segmentPaths().length).toBe(1);
    await w.append(makeEntries(501, 3, 4));
    await w.close();
    w = await Wal.open(dir, { segmentBytes: 4096, log: quiet });
    expect(w.firstIndex()).toBe(501);
    expect(w.term(500)).toBe(4);
    await expectAll(w, 501, 503);
    await w.close();
  });

  test("limits and contract violations are refused", async () => {
    const w = await Wal.open(fresh(), { log: quiet });
    await w.append(makeEntries(1, 3, 2));
    await expect(w.append(makeEntries(5, 1, 2))).rejects.toThrow(/gap/);
    await expect(w.append(makeEntries(4, 1, 1))).rejects.toThrow(/term/);
    await expect(w.append([{ index: 4, term: 2, type: 0, data: new Uint8Array(64 * 1024 * 1024 + 1) }])).rejects.toThrow(/exceeds/);
    await expect(Wal.open(fresh(), { segmentBytes: 2 * 1024 * 1024 * 1024 })).rejects.toThrow(/segmentBytes/);
    expect(w.lastIndex()).toBe(3);
    await w.close();
  });
});
