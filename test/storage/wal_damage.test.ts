// Damage on disk: a torn last batch (cut at every byte, or zero-filled, or garbage) is cut back
// to the previous batch; a flipped bit in committed data refuses to open, naming file, offset, index.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CorruptError } from "../../src/storage/disk_error.ts";
import { Wal } from "../../src/storage/wal.ts";
import { entryProblem, makeEntries, rng } from "./fixtures/entries.ts";

// Every case reopens the log hundreds of times, each with fsyncs: slow on a busy disk.
setDefaultTimeout(60_000);
const root = mkdtempSync(join(tmpdir(), "edgenode-waldmg-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = () => {};
let n = 0;

function cloneDir(src: string): string {
  const dst = join(root, `c${n++}`);
  mkdirSync(dst);
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dst, f));
  return dst;
}
const tailSegment = (dir: string) =>
  join(
    dir,
    readdirSync(dir)
      .filter((f) => f.endsWith(".wal"))
      .sort()
      .at(-1) as string,
  );

/**
 * A log of `batches` batches of 3 entries; returns dir and the byte range of the last batch in the
 * tail segment. Not preallocated, so the file's size is the end of the last batch.
 */
async function build(batches: number, segmentBytes = 1 << 20) {
  const dir = join(root, `b${n++}`);
  const w = await Wal.open(dir, { segmentBytes, log: quiet, preallocate: false });
  for (let b = 0; b < batches - 1; b++) await w.append(makeEntries(w.lastIndex() + 1, 3, 1));
  await w.close();
  const start = statSync(tailSegment(dir)).size;
  const w2 = await Wal.open(dir, { segmentBytes, log: quiet, preallocate: false });
  await w2.append(makeEntries(w2.lastIndex() + 1, 3, 1));
  await w2.close();
  return { dir, start, end: statSync(tailSegment(dir)).size, last: batches * 3 };
}

async function expectPrefix(dir: string, last: number) {
  const w = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
  try {
    expect(w.lastIndex()).toBe(last);
    for (const e of w.entries(1, last + 1, Number.MAX_SAFE_INTEGER)) expect(entryProblem(e)).toBeUndefined();
    // The log continues cleanly after the cut, and that survives another reopen.
    await w.append(makeEntries(last + 1, 2, 2));
  } finally {
    await w.close();
  }
  const w2 = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
  expect(w2.lastIndex()).toBe(last + 2);
  await w2.close();
}

describe("torn tail", () => {
  test("cut at every byte position of the last batch", async () => {
    const { dir, start, end, last } = await build(4);
    expect(end - start).toBeGreaterThan(48);
    for (let cut = start; cut < end; cut++) {
      const d = cloneDir(dir);
      truncateSync(tailSegment(d), cut);
      await expectPrefix(d, last - 3);
      rmSync(d, { recursive: true });
    }
    await expectPrefix(cloneDir(dir), last);
  });

  test("last batch partly written, rest of the file zeros or garbage", async () => {
    const { dir, start, end, last } = await build(4);
    const seed = Date.now() % 100000;
    const r = rng(seed);
    for (let cut = start; cut < end; cut += 3) {
      for (const fill of ["zero", "garbage"] as const) {
        const d = cloneDir(dir);
        const p = tailSegment(d);
        const b = readFileSync(p);
        for (let i = cut; i < b.length + 64; i++) {
          if (i < b.length) b[i] = fill === "zero" ? 0 : Math.floor(r() * 256);
        }
        const unchanged = b.equals(readFileSync(p));
        writeFileSync(p, b);
        try {
          // Zeroing bytes that were already zero (padding, reserved) leaves the batch intact.
          await expectPrefix(d, unchanged ? last : last - 3);
        } catch (e) {
          throw new Error(`seed ${seed} cut ${cut} fill ${fill}: ${e}`);
        }
        rmSync(d, { recursive: true });
      }
    }
  });

  test("an unfinished new segment (header torn) is removed", async () => {
    const { dir, last } = await build(3);
    const d = cloneDir(dir);
    writeFileSync(join(d, `${(99).toString(16).padStart(16, "0")}-${String(last + 1).padStart(20, "0")}.wal`), new Uint8Array(17));
    await expectPrefix(d, last);
  });
});

describe("bit flips in committed data", () => {
  test("refuse to open, naming file, offset and index", async () => {
    const { dir, start } = await build(6);
    const seg = readdirSync(dir).find((f) => f.endsWith(".wal")) as string;
    const seed = Date.now() % 100000;
    const r = rng(seed);
    // Bytes of every batch but the last (32..start), a bit chosen at random per byte: every byte
    // with EDGENODE_LONG=1, every third by default (with a random phase).
    const step = process.env.EDGENODE_LONG === "1" ? 1 : 3;
    let shown = false;
    for (let pos = 32 + Math.floor(r() * step); pos < start; pos += step) {
      const d = cloneDir(dir);
      const p = join(d, seg);
      const b = readFileSync(p);
      b[pos] = (b[pos] as number) ^ (1 << Math.floor(r() * 8));
      writeFileSync(p, b);
      let err: unknown;
      try {
        const w = await Wal.open(d, { log: quiet });
        await w.close();
      } catch (e) {
        err = e;
      }
      if (!(err instanceof CorruptError)) throw new Error(`seed ${seed}: flip at ${pos} was not detected (${err})`);
      if (!shown) {
        shown = true;
        console.log(`example: ${err.message}`);
      }
      expect(err.message).toContain(seg);
      expect(err.message).toMatch(/offset \d+/);
      expect(err.message).toMatch(/index/);
      rmSync(d, { recursive: true });
    }
  });

  test("a flip in a sealed segment refuses too; a flip found on read is CORRUPT", async () => {
    const { dir } = await build(40, 4096);
    const segs = readdirSync(dir)
      .filter((f) => f.endsWith(".wal"))
      .sort();
    expect(segs.length).toBeGreaterThan(2);
    const d = cloneDir(dir);
    const first = join(d, segs[0] as string);
    const b = readFileSync(first);
    const at = b.length - 20; // inside the last batch of a sealed segment
    b[at] = (b[at] as number) ^ 0x10;
    writeFileSync(first, b);
    await expect(Wal.open(d, { log: quiet })).rejects.toThrow(CorruptError);

    // Damage after open: the read path checks each entry's own CRC.
    const d2 = cloneDir(dir);
    const w = await Wal.open(d2, { log: quiet, cacheBytes: 0 });
    const f = join(d2, segs[0] as string);
    const b2 = readFileSync(f);
    b2[32 + 32 + 40] = (b2[32 + 32 + 40] as number) ^ 1; // inside entry 1's frame
    writeFileSync(f, b2);
    expect(() => w.entries(1, 4, 1 << 20)).toThrow(/entry 1 at offset \d+ is damaged/);
    await w.close();
  });
});

describe("preallocated segments", () => {
  test("the tail is kept zero-filled ahead; sealed segments end in zeros; all reopen intact", async () => {
    const dir = join(root, `p${n++}`);
    const segmentBytes = 8 * 1024;
    const w = await Wal.open(dir, { segmentBytes, log: quiet });
    for (let b = 0; b < 60; b++) await w.append(makeEntries(w.lastIndex() + 1, 3, 1));
    const last = w.lastIndex();
    await w.close();
    const segs = readdirSync(dir)
      .filter((f) => f.endsWith(".wal"))
      .sort();
    expect(segs.length).toBeGreaterThan(2);
    // Every segment, sealed or tail, has the full preallocated length (segments this small are
    // zero-filled whole when created).
    for (const s of segs) expect(statSync(join(dir, s)).size).toBe(segmentBytes);
    const tail = readFileSync(join(dir, segs.at(-1) as string));
    expect(tail.at(-1)).toBe(0);
    await expectPrefix(dir, last);
  });

  test("a torn last batch inside a zero-filled segment becomes zeros again; the length stays", async () => {
    const { dir, start, end, last } = await build(4);
    const seed = Date.now() % 100000;
    const r = rng(seed);
    const length = 1 << 20;
    for (let cut = start; cut < end; cut += 5) {
      const d = cloneDir(dir);
      const p = tailSegment(d);
      // As if preallocated: zeros to 1 MiB; the last batch torn at `cut` into garbage or zeros.
      const b = Buffer.alloc(length);
      readFileSync(p).copy(b);
      const garbage = cut % 2 === 0;
      for (let i = cut; i < end; i++) b[i] = garbage ? Math.floor(r() * 256) : 0;
      writeFileSync(p, b);
      const w = await Wal.open(d, { log: quiet, cacheBytes: 0 });
      try {
        expect(w.lastIndex()).toBe(last - 3);
      } catch (e) {
        throw new Error(`seed ${seed} cut ${cut} ${garbage ? "garbage" : "zeros"}: ${e}`);
      } finally {
        await w.close();
      }
      const after = readFileSync(p);
      expect(after.length).toBe(length);
      expect(after.subarray(start).every((x) => x === 0)).toBe(true);
      await expectPrefix(d, last - 3);
      rmSync(d, { recursive: true });
    }
  });

  test("a large log keeps the tail zero-filled up to 4 MiB past its end, and no further", async () => {
    const dir = join(root, `q${n++}`);
    const w = await Wal.open(dir, { log: quiet });
    const tail = () =>
      join(
        dir,
        readdirSync(dir)
          .filter((f) => f.endsWith(".wal"))
          .sort()
          .at(-1) as string,
      );
    // A new segment starts with its first MiB zeroed.
    expect(statSync(tail()).size).toBe(1024 * 1024);
    const data = new Uint8Array(4096).fill(9);
    let end = 32;
    for (let b = 0; b < 96; b++) {
      const first = w.lastIndex() + 1;
      await w.append(Array.from({ length: 16 }, (_, k) => ({ index: first + k, term: 1, type: 0 as const, data })));
      end += 32 + 16 * (32 + 4096) + 16;
      // Zeroed ahead by at least 2 MiB after every append (the background sync need not be done:
      // the size is what the writes made it), and never more than 4 MiB ahead.
      const size = statSync(tail()).size;
      expect(size).toBeGreaterThanOrEqual(end + 2 * 1024 * 1024);
      expect(size).toBeLessThanOrEqual(end + 4 * 1024 * 1024);
    }
    await w.close();
    const w2 = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
    expect(w2.lastIndex()).toBe(96 * 16);
    expect(w2.entries(1, 2, 1 << 20)[0]?.data).toEqual(data);
    await w2.close();
  });
});

describe("segments larger than the open's read window (4 MiB)", () => {
  // Batches of 16 × 4 KiB straddle the window's edges, and one 5 MiB batch is larger than it.
  async function buildLarge() {
    const dir = join(root, `L${n++}`);
    const w = await Wal.open(dir, { log: quiet });
    const big = (first: number, count: number, size: number) =>
      Array.from({ length: count }, (_, k) => ({
        index: first + k,
        term: 1,
        type: 0 as const,
        data: new Uint8Array(size).fill((first + k) & 255),
      }));
    for (let b = 0; b < 70; b++) await w.append(big(w.lastIndex() + 1, 16, 4096));
    await w.append(big(w.lastIndex() + 1, 2, 2.5 * 1024 * 1024));
    for (let b = 0; b < 70; b++) await w.append(big(w.lastIndex() + 1, 16, 4096));
    const last = w.lastIndex();
    await w.close();
    const seg = tailSegment(dir);
    return { dir, seg: seg.slice(dir.length + 1), last };
  }
  const intact = async (dir: string, last: number) => {
    const w = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
    try {
      expect(w.lastIndex()).toBe(last);
      for (let i = 1; i <= last; ) {
        const es = w.entries(i, last + 1, 8 << 20);
        for (const e of es) expect(e.data[0]).toBe(e.index & 255);
        i += es.length;
      }
    } finally {
      await w.close();
    }
  };

  test("reopens intact; a flip past the first window refuses; garbage past the end is cut", async () => {
    const { dir, seg, last } = await buildLarge();
    expect(statSync(join(dir, seg)).size).toBeGreaterThan(10 * 1024 * 1024);
    await intact(dir, last);

    // A flipped bit at 9 MiB, inside committed data read in a later window.
    const d1 = cloneDir(dir);
    const b1 = readFileSync(join(d1, seg));
    b1[9 * 1024 * 1024 + 77] = (b1[9 * 1024 * 1024 + 77] as number) ^ 4;
    writeFileSync(join(d1, seg), b1);
    await expect(Wal.open(d1, { log: quiet })).rejects.toThrow(/damaged batch at offset \d+ .*before committed data/);

    // Garbage in the zero-filled space 9 MiB past the last batch (the segment zero-filled to its
    // full 64 MiB), two windows on: no batch follows it, so it is a torn tail, zeroed again, and
    // every entry is kept.
    const d2 = cloneDir(dir);
    const p2 = join(d2, seg);
    const b2 = Buffer.alloc(64 * 1024 * 1024);
    readFileSync(p2).copy(b2);
    let end = b2.length - 1;
    while (end > 0 && b2[end] === 0) end--;
    const junk = end + 9 * 1024 * 1024;
    b2[junk] = 0x5a;
    writeFileSync(p2, b2);
    await intact(d2, last);
    expect(readFileSync(p2)[junk]).toBe(0);
  });
});
