// A new header on a snapshot file without re-encoding: the result verifies, carries the new header
// and exactly the old records, whatever the chunking; a file damaged anywhere, truncated, or refused
// by the caller's check fails instead of producing a file.
import { beforeAll, describe, expect, test } from "bun:test";
import { TRAILER_BYTES } from "../../src/snapshot/format.ts";
import { readSnapshot, verifySnapshot } from "../../src/snapshot/reader.ts";
import { rewriteSnapshotHeader } from "../../src/snapshot/rewrite.ts";
import { encodeSnapshot } from "../../src/snapshot/writer.ts";
import { chunked, collect, header, textPool, variableRecords } from "./fixture.ts";

let good: Uint8Array;
let counts: Record<string, number>;

async function records(bytes: Uint8Array): Promise<unknown[]> {
  const r = readSnapshot(chunked(bytes, 3));
  await r.header;
  const out: unknown[] = [];
  for await (const rec of r.records) out.push(rec);
  return out;
}

const concat = (xs: Uint8Array[]) => Buffer.concat(xs);
const recordCount = async () => (await verifySnapshot(chunked(good, 2))).records;

const newHeader = (c: Record<string, number>) =>
  header(c, { index: 777, term: 9, snapshotId: "9-777-raft", region: "global", clusterId: "c-1" });

beforeAll(async () => {
  const v = variableRecords(2000, textPool(11));
  counts = v.counts;
  good = await collect(encodeSnapshot(header(counts, { index: 5, term: 1 }), v.records()));
});

describe("rewriteSnapshotHeader", () => {
  test("the new file verifies with the new header and exactly the old records, for any chunking", async () => {
    const want = await records(good);
    expect(want.length).toBeGreaterThan(2000);
    for (const seed of [1, 2, 3, 4]) {
      const maxChunk = [7, 31, 33, 64 * 1024][seed - 1]!;
      const out = await collect(
        rewriteSnapshotHeader(chunked(good, seed, maxChunk), (old) => {
          expect(old.index).toBe(5);
          return newHeader(old.counts);
        }),
      );
      const v = await verifySnapshot(chunked(out, seed));
      expect(v.header).toMatchObject({ index: 777, term: 9, snapshotId: "9-777-raft", counts });
      expect(v.records).toBe(want.length);
      expect(await records(out)).toEqual(want);
    }
  });

  test("a flipped byte in the body, a truncation or a bad preamble fails the stream", async () => {
    for (const pos of [good.length - 1, good.length - 40, Math.floor(good.length / 2), 200]) {
      const bad = good.slice();
      bad[pos] = (bad[pos] as number) ^ 0x10;
      await expect(collect(rewriteSnapshotHeader(chunked(bad, pos), (old) => newHeader(old.counts)))).rejects.toMatchObject({
        code: "BAD_SNAPSHOT",
      });
    }
    await expect(
      collect(rewriteSnapshotHeader(chunked(good.subarray(0, good.length - 10), 5), (old) => newHeader(old.counts))),
    ).rejects.toMatchObject({ code: "BAD_SNAPSHOT" });
    const pre = good.slice();
    pre[9] = (pre[9] as number) ^ 1; // the version, which the preamble's CRC covers
    await expect(collect(rewriteSnapshotHeader(chunked(pre, 6), (old) => newHeader(old.counts)))).rejects.toMatchObject({
      code: "BAD_SNAPSHOT",
    });
  });

  test("the caller's refusal fails the stream before any byte", async () => {
    const got: Uint8Array[] = [];
    const refuse = async () => {
      for await (const c of rewriteSnapshotHeader(chunked(good, 8), () => {
        throw new Error("counts differ");
      }))
        got.push(c);
    };
    await expect(refuse()).rejects.toThrow("counts differ");
    expect(got).toHaveLength(0);
  });
  test("after the header, each whole source chunk comes out as the same object, so a consumer may release it", async () => {
    const size = 16 * 1024;
    const parts: Uint8Array[] = [];
    for (let at = 0; at < good.length; at += size) parts.push(good.slice(at, at + size));
    expect(parts.length).toBeGreaterThan(4);
    async function* source(): AsyncGenerator<Uint8Array> {
      yield* parts;
    }
    const out: Uint8Array[] = [];
    for await (const c of rewriteSnapshotHeader(source(), (old) => newHeader(old.counts))) out.push(c);
    const passed = new Set(out);
    // The first holds the old header, the last the old trailer: every chunk between goes out untouched.
    for (const p of parts.slice(1, -1)) expect(passed.has(p)).toBe(true);
    expect((await verifySnapshot(chunked(concat(out), 1))).records).toBe(await recordCount());
  });
});

describe("rewriteSnapshotHeader with the input verified (a staged file this server hashed as it wrote it)", () => {
  const sha256Of = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
  let small: Uint8Array;
  beforeAll(async () => {
    const v = variableRecords(300, textPool(5));
    small = await collect(encodeSnapshot(header(v.counts, { index: 5, term: 1 }), v.records()));
  });

  test("the same output as the hashing rewrite, for any chunking, and the output's size and SHA-256 given", async () => {
    const plain = await collect(rewriteSnapshotHeader(chunked(small, 1), (old) => newHeader(old.counts)));
    for (const seed of [1, 2, 3, 4, 5]) {
      const maxChunk = [5, 7, 20, 33, 64 * 1024][seed - 1]!;
      for (const inputVerified of [true, false]) {
        const result = { size: 0, sha256: "" };
        const out = await collect(
          rewriteSnapshotHeader(chunked(small, seed, maxChunk), (old) => newHeader(old.counts), { inputVerified, result }),
        );
        expect(Buffer.from(out).equals(Buffer.from(plain))).toBe(true);
        expect(result).toEqual({ size: out.length, sha256: sha256Of(out) });
      }
    }
  });

  test("a flipped byte anywhere before the trailer, a truncation or bytes after the trailer still fail the stream", async () => {
    const end = small.length - TRAILER_BYTES;
    const positions = new Set<number>();
    for (let i = 0; i < Math.min(end, 400); i++) positions.add(i);
    for (let i = Math.max(0, end - 400); i < end; i++) positions.add(i);
    for (let i = 0; i < end; i += 97) positions.add(i);
    const rewrite = (bytes: Uint8Array, seed: number) =>
      collect(rewriteSnapshotHeader(chunked(bytes, seed, 4096), (old) => newHeader(old.counts), { inputVerified: true }));
    for (const pos of positions) {
      const bad = small.slice();
      bad[pos] = (bad[pos] as number) ^ 0x01;
      await expect(rewrite(bad, pos)).rejects.toMatchObject({ code: "BAD_SNAPSHOT" });
    }
    for (const cut of [1, 16, TRAILER_BYTES - 1, TRAILER_BYTES, TRAILER_BYTES + 1, 500, Math.floor(small.length / 2)]) {
      await expect(rewrite(small.subarray(0, small.length - cut), cut)).rejects.toMatchObject({ code: "BAD_SNAPSHOT" });
    }
    await expect(rewrite(concat([small, new Uint8Array(1)]), 3)).rejects.toMatchObject({ code: "BAD_SNAPSHOT" });
  }, 120_000);
});
