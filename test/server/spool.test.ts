// The restore's spool files: what reaches a reader is in the file first, and a stream that fails, runs
// past its announced size, or is abandoned leaves no file behind.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpoolThrough, spool } from "../../src/server/staged_snapshots.ts";

const dir = mkdtempSync(join(tmpdir(), "edgenode-spool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const path = () => join(dir, `f${n++}`);

function bytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function* chunksOf(parts: Uint8Array[], failAfter?: number): AsyncGenerator<Uint8Array> {
  for (const [i, p] of parts.entries()) {
    if (failAfter !== undefined && i === failAfter) throw new Error("upload cut");
    yield p;
  }
}

describe("spool", () => {
  test("writes every byte, 0600, and returns their size and SHA-256", async () => {
    const parts = [bytes(70_000, 1), bytes(1, 2), bytes(300_000, 3)];
    const p = path();
    const r = await spool(p, chunksOf(parts));
    const all = Buffer.concat(parts);
    expect(r.size).toBe(all.length);
    expect(r.sha256).toBe(createHash("sha256").update(all).digest("hex"));
    expect(Buffer.compare(readFileSync(p), all)).toBe(0);
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  test("a stream longer than announced, or one that fails, leaves no file", async () => {
    const p1 = path();
    await expect(spool(p1, chunksOf([bytes(10, 1), bytes(10, 2)]), 15)).rejects.toThrow(/longer than the announced 15 bytes/);
    expect(existsSync(p1)).toBe(false);
    const p2 = path();
    await expect(spool(p2, chunksOf([bytes(10, 1), bytes(10, 2)], 1))).rejects.toThrow(/upload cut/);
    expect(existsSync(p2)).toBe(false);
  });
});

describe("SpoolThrough", () => {
  test("each chunk is in the file before the reader gets it; end reports the size", async () => {
    const parts = [bytes(1000, 1), bytes(5000, 2), bytes(7, 3)];
    const p = path();
    const sp = await SpoolThrough.create(p);
    let ended = -1;
    let seen = 0;
    for await (const c of sp.through(chunksOf(parts), (size) => (ended = size))) {
      seen += c.byteLength;
      expect(statSync(p).size).toBe(seen);
    }
    expect(ended).toBe(seen);
    expect(await sp.finish()).toBe(seen);
    expect(Buffer.compare(readFileSync(p), Buffer.concat(parts))).toBe(0);
  });

  test("a reader that stops early closes the source; abort removes the file", async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; ; i++) yield bytes(100, i);
      } finally {
        closed = true;
      }
    }
    const p = path();
    const sp = await SpoolThrough.create(p);
    const it = sp.through(source());
    await it.next();
    await it.next();
    await it.return(undefined);
    expect(closed).toBe(true);
    await sp.abort();
    expect(existsSync(p)).toBe(false);
  });
});
