// A file whose SHA-256 the server verified when it wrote it (a staged restore file) is read without hashing
// it again: the result carries that digest, the records are the same, and damage before the trailer is still
// found, by the frames' CRC32s.
import { beforeAll, describe, expect, test } from "bun:test";
import { TRAILER_BYTES } from "../../src/snapshot/format.ts";
import { readSnapshot, verifySnapshot } from "../../src/snapshot/reader.ts";
import { encodeSnapshot } from "../../src/snapshot/writer.ts";
import { chunked, collect, header, textPool, variableRecords } from "./fixture.ts";

let good: Uint8Array;
let sha256: string;

beforeAll(async () => {
  const v = variableRecords(600, textPool(5));
  good = await collect(encodeSnapshot(header(v.counts, { index: 3, term: 1 }), v.records()));
  sha256 = (await verifySnapshot(chunked(good, 1))).sha256;
});

async function records(bytes: Uint8Array, verifiedSha256?: string): Promise<unknown[]> {
  const r = readSnapshot(chunked(bytes, 4), verifiedSha256 === undefined ? {} : { verifiedSha256 });
  await r.header;
  const out: unknown[] = [];
  for await (const rec of r.records) out.push(rec);
  return out;
}

describe("readSnapshot with verifiedSha256", () => {
  test("gives the same records and result as a hashing read, with the digest it was given", async () => {
    const plain = await verifySnapshot(chunked(good, 2));
    const trusted = await verifySnapshot(chunked(good, 2), { verifiedSha256: sha256 });
    expect(trusted).toEqual(plain);
    expect(await records(good, sha256)).toEqual(await records(good));
  });

  test("a flipped byte anywhere before the trailer still fails the read", async () => {
    const end = good.length - TRAILER_BYTES;
    const positions = new Set<number>();
    for (let i = 0; i < Math.min(end, 400); i++) positions.add(i);
    for (let i = Math.max(0, end - 400); i < end; i++) positions.add(i);
    for (let i = 0; i < end; i += 97) positions.add(i);
    for (const pos of positions) {
      const bad = good.slice();
      bad[pos] = (bad[pos] as number) ^ 0x01;
      await expect(verifySnapshot(chunked(bad, pos), { verifiedSha256: sha256 })).rejects.toMatchObject({ code: "BAD_SNAPSHOT" });
    }
  }, 120_000);
});
