// A staging peer receives the leader's file (StagedSnapshots.receive): it is kept under its id only when
// size and SHA-256 match what the leader announced; a wrong digest, a stream longer than announced or one
// cut off leaves nothing staged and no temp file.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/lib/logger.ts";
import { ORPHAN_AGE_MS, StagedSnapshots } from "../../src/server/staged_snapshots.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-staged-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function fresh(): Promise<StagedSnapshots> {
  const s = new StagedSnapshots(join(root, `d${n++}`), silentLogger());
  await s.init();
  return s;
}

const parts = [new Uint8Array(70_000).fill(1), new Uint8Array(5).fill(2), new Uint8Array(200_000).fill(3)];
const all = Buffer.concat(parts);
const expect_ = { size: all.length, sha256: createHash("sha256").update(all).digest("hex") };

async function* chunks(list: Uint8Array[], failAt?: number): AsyncGenerator<Uint8Array> {
  for (const [i, p] of list.entries()) {
    if (i === failAt) throw new Error("stream cut");
    yield p;
  }
}

describe("StagedSnapshots.receive", () => {
  test("keeps the file under its id when size and digest match", async () => {
    const s = await fresh();
    const got = await s.receive("a-1", chunks(parts), expect_);
    expect(got).toMatchObject(expect_);
    expect(s.has("a-1")).toBe(true);
    expect(Buffer.compare(readFileSync(s.path("a-1")), all)).toBe(0);
    expect(readdirSync(s.dir)).toEqual(["a-1.snap"]);
  });

  test("with release, each chunk's memory is given back once it is written and hashed, and the file holds every byte", async () => {
    const s = await fresh();
    const own = parts.map((p) => p.slice());
    const got = await s.receive("a-2", chunks(own), expect_, { release: true });
    expect(got).toMatchObject(expect_);
    expect(Buffer.compare(readFileSync(s.path("a-2")), all)).toBe(0);
    // Whole buffers of 16 KiB or more are released; the 5-byte one is left to the collector.
    expect(own.map((c) => c.byteLength)).toEqual([0, 5, 0]);
  });

  test("remembers the digest it computed as it wrote each file, until the file goes; a refused one is not remembered", async () => {
    const s = await fresh();
    await s.receive("h-1", chunks(parts), expect_);
    expect(s.hashedAsWritten("h-1")).toBe(expect_.sha256);
    await expect(s.receive("h-2", chunks(parts), { ...expect_, sha256: "0".repeat(64) })).rejects.toThrow("does not match");
    expect(s.hashedAsWritten("h-2")).toBeUndefined();
    const tmp = s.tempPath("h-3");
    writeFileSync(tmp, all);
    await s.adopt("h-3", tmp, expect_.sha256);
    expect(s.hashedAsWritten("h-3")).toBe(expect_.sha256);
    await s.remove("h-1");
    expect(s.hashedAsWritten("h-1")).toBeUndefined();
    // A new instance (a restart) knows none: its files are hashed when read.
    expect(new StagedSnapshots(s.dir, silentLogger()).hashedAsWritten("h-3")).toBeUndefined();
  });

  test("a wrong digest, a shorter, longer or cut stream leaves nothing", async () => {
    const s = await fresh();
    await expect(s.receive("b-1", chunks(parts), { ...expect_, sha256: "0".repeat(64) })).rejects.toThrow("does not match");
    await expect(s.receive("b-2", chunks([...parts, new Uint8Array(1)]), expect_)).rejects.toThrow("longer than the announced");
    await expect(s.receive("b-3", chunks(parts, 2), expect_)).rejects.toThrow("stream cut");
    await expect(s.receive("b-4", chunks(parts.slice(0, 2)), expect_)).rejects.toThrow("does not match");
    expect(readdirSync(s.dir)).toEqual([]);
  });
});

describe("StagedSnapshots applied-restore notes", () => {
  test("a note survives a restart (a fresh StagedSnapshots on the same directory) and goes with its file", async () => {
    const s = await fresh();
    await s.receive("c-1", chunks(parts), expect_);
    await s.receive("c-2", chunks(parts), expect_);
    await s.markApplied("c-1", 4242);
    expect(readdirSync(s.dir).sort()).toEqual(["c-1.applied", "c-1.snap", "c-2.snap"]);
    const again = new StagedSnapshots(s.dir, silentLogger());
    await again.init();
    expect([...(await again.appliedRestores())]).toEqual([["c-1", 4242]]);
    await again.remove("c-1");
    expect(readdirSync(s.dir)).toEqual(["c-2.snap"]);
    expect((await again.appliedRestores()).size).toBe(0);
  });

  test("a note without its file, or one that holds no index, is dropped; the files stay", async () => {
    const s = await fresh();
    await s.receive("d-1", chunks(parts), expect_);
    writeFileSync(join(s.dir, "d-1.applied"), "12x");
    writeFileSync(join(s.dir, "gone.applied"), "7");
    writeFileSync(join(s.dir, "zero.applied"), "0");
    expect((await s.appliedRestores()).size).toBe(0);
    expect(readdirSync(s.dir)).toEqual(["d-1.snap"]);
  });

  test("a note leaves no temp file behind, and rewriting it replaces the index", async () => {
    const s = await fresh();
    await s.receive("e-1", chunks(parts), expect_);
    await s.markApplied("e-1", 10);
    await s.markApplied("e-1", 11);
    expect(readdirSync(s.dir).sort()).toEqual(["e-1.applied", "e-1.snap"]);
    expect([...(await s.appliedRestores())]).toEqual([["e-1", 11]]);
  });
});

describe("StagedSnapshots.sweep", () => {
  /** Set a file's modification time `ageMs` in the past. */
  const age = (s: StagedSnapshots, name: string, ageMs: number) => {
    const t = new Date(Date.now() - ageMs);
    utimesSync(join(s.dir, name), t, t);
  };

  test("removes day-old staged files and notes but those kept; temp files only when asked (at start)", async () => {
    const s = await fresh();
    for (const id of ["old-1", "old-kept", "young"]) await s.receive(id, chunks(parts), expect_);
    await s.markApplied("old-1", 5);
    writeFileSync(join(s.dir, "upload-x.tmp"), "partial");
    for (const name of ["old-1.snap", "old-1.applied", "old-kept.snap", "upload-x.tmp"]) age(s, name, ORPHAN_AGE_MS + 60_000);
    age(s, "young.snap", ORPHAN_AGE_MS - 60_000);
    expect((await s.sweep(new Set(["old-kept"]), { temps: false })).sort()).toEqual(["old-1.applied", "old-1.snap"]);
    expect(readdirSync(s.dir).sort()).toEqual(["old-kept.snap", "upload-x.tmp", "young.snap"]);
    expect(await s.sweep(new Set(["old-kept"]), { temps: true })).toEqual([]);
    expect(readdirSync(s.dir).sort()).toEqual(["old-kept.snap", "young.snap"]);
  });

  test("init removes temp files and day-old files, keeping younger ones", async () => {
    const s = await fresh();
    await s.receive("a", chunks(parts), expect_);
    await s.receive("b", chunks(parts), expect_);
    writeFileSync(join(s.dir, "b-x.tmp"), "partial");
    age(s, "a.snap", ORPHAN_AGE_MS + 60_000);
    await new StagedSnapshots(s.dir, silentLogger()).init();
    expect(readdirSync(s.dir)).toEqual(["b.snap"]);
  });
});
