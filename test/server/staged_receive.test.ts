// A staging peer builds the new state as the file streams in (StagedSnapshots.receiveThrough): the file
// is kept under its id only when the consumer read all of it and size and SHA-256 match what the leader
// announced; a consumer that fails (a file this server cannot build), a wrong digest, a stream longer
// than announced or one cut off leaves nothing staged and no temp file.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/lib/logger.ts";
import { StagedSnapshots } from "../../src/server/staged_snapshots.ts";

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

/** A consumer that reads everything and returns how many bytes it saw. */
async function count(src: AsyncIterable<Uint8Array>): Promise<number> {
  let k = 0;
  for await (const c of src) k += c.byteLength;
  return k;
}

describe("StagedSnapshots.receiveThrough", () => {
  test("keeps the file under its id, with the consumer's result, when all matches", async () => {
    const s = await fresh();
    const got = await s.receiveThrough("a-1", chunks(parts), expect_, count);
    expect(got).toBe(all.length);
    expect(s.has("a-1")).toBe(true);
    expect(Buffer.compare(readFileSync(s.path("a-1")), all)).toBe(0);
    expect(readdirSync(s.dir)).toEqual(["a-1.snap"]);
  });

  test("a consumer that fails leaves nothing", async () => {
    const s = await fresh();
    const failing = async (src: AsyncIterable<Uint8Array>) => {
      for await (const _ of src) throw new Error("cannot build this file");
      return 0;
    };
    await expect(s.receiveThrough("a-2", chunks(parts), expect_, failing)).rejects.toThrow("cannot build this file");
    expect(s.has("a-2")).toBe(false);
    expect(readdirSync(s.dir)).toEqual([]);
  });

  test("a consumer that stops before the end fails the staging and leaves nothing", async () => {
    const s = await fresh();
    const first = async (src: AsyncIterable<Uint8Array>) => {
      for await (const c of src) return c.byteLength;
      return 0;
    };
    // Stopping early closes the stream, so the rest never reaches the file: refused, never kept short.
    await expect(s.receiveThrough("a-3", chunks(parts), expect_, first)).rejects.toThrow();
    expect(readdirSync(s.dir)).toEqual([]);
  });

  test("a wrong digest, a longer stream or a cut one leaves nothing", async () => {
    const s = await fresh();
    await expect(s.receiveThrough("b-1", chunks(parts), { ...expect_, sha256: "0".repeat(64) }, count)).rejects.toThrow("does not match");
    await expect(s.receiveThrough("b-2", chunks([...parts, new Uint8Array(1)]), expect_, count)).rejects.toThrow("longer than the announced");
    await expect(s.receiveThrough("b-3", chunks(parts, 2), expect_, count)).rejects.toThrow("stream cut");
    expect(readdirSync(s.dir)).toEqual([]);
  });
});
