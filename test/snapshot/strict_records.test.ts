// Snapshot records go through the one strict decoder: a file whose checksums are all valid but whose
// header, records or end frame carry a CBOR tag (a 192 KiB bignum among them) or nesting past the
// bound is refused as a bad snapshot, at once, naming what was refused.
import { expect, test } from "bun:test";
import * as zlib from "node:zlib";
import { encode } from "../../src/lib/codec.ts";
import { MAX_CBOR_DEPTH } from "../../src/lib/limits.ts";
import { FORMAT_VERSION, FrameKind, SnapshotFormatError } from "../../src/snapshot/format.ts";
import { verifySnapshot } from "../../src/snapshot/reader.ts";
import { chunked, forge, header, headerFrame } from "./fixture.ts";

const h = { ...header({ vars: 1 }), formatVersion: FORMAT_VERSION };
const block = (raw: Uint8Array) => ({ kind: FrameKind.Block, payload: zlib.zstdCompressSync(raw), raw: raw.length });
const end = (records: number, blocks: number, rawBytes: number) => ({
  kind: FrameKind.End,
  payload: encode({ records, blocks, rawBytes }),
});

/** {t: "vars", v: <item>} with `item` given as raw CBOR. */
const recordWith = (item: number[]) => Uint8Array.from([0xa2, 0x61, 0x74, 0x64, ...new TextEncoder().encode("vars"), 0x61, 0x76, ...item]);

async function refusal(bytes: Uint8Array): Promise<string> {
  try {
    await verifySnapshot(chunked(bytes, 1));
  } catch (e) {
    expect(e).toBeInstanceOf(SnapshotFormatError);
    return (e as Error).message;
  }
  throw new Error("the forged file verified");
}

test("the forger's plain record verifies, so the refusals below are the decoder's", async () => {
  const raw = recordWith([0x01]);
  expect((await verifySnapshot(chunked(forge([headerFrame(h), block(raw), end(1, 1, raw.length)]), 1))).counts).toEqual({ vars: 1 });
});

test("a tagged record is refused: bignum (192 KiB), set, typed array, shared reference, record extension", async () => {
  const big = 192 * 1024;
  const bignum = [
    0xc2,
    0x5a,
    (big >>> 24) & 0xff,
    (big >>> 16) & 0xff,
    (big >>> 8) & 0xff,
    big & 0xff,
    ...new Array<number>(big).fill(0xff),
  ];
  const cases: [string, number[]][] = [
    ["tag 2", bignum],
    ["tag 258", [0xd9, 0x01, 0x02, 0x81, 0x01]],
    ["tag 86", [0xd8, 0x56, 0x48, 0, 0, 0, 0, 0, 0, 0, 0]],
    ["tag 28", [0xd8, 0x1c, 0x80]],
    ["tag 57343", [0xd9, 0xdf, 0xff, 0x80]],
  ];
  for (const [tag, item] of cases) {
    const raw = recordWith(item);
    const msg = await refusal(forge([headerFrame(h), block(raw), end(1, 1, raw.length)]));
    expect(msg).toMatch(
      new RegExp(`^bad record in block at byte \\d+ \\(after record 0\\): not valid CBOR \\(refused CBOR: ${tag} at byte \\d+\\)$`),
    );
  }
});

test(`nesting past ${MAX_CBOR_DEPTH} in a record, and a tag in the header or end frame, are refused`, async () => {
  const deep = recordWith([...new Array<number>(MAX_CBOR_DEPTH + 10).fill(0x81), 0x01]);
  expect(await refusal(forge([headerFrame(h), block(deep), end(1, 1, deep.length)]))).toContain(
    `refused CBOR: nesting deeper than ${MAX_CBOR_DEPTH}`,
  );
  const raw = recordWith([0x01]);
  const taggedHeader = { kind: FrameKind.Header, payload: Uint8Array.from([0xc1, ...encode(h)]) };
  expect(await refusal(forge([taggedHeader, block(raw), end(1, 1, raw.length)]))).toMatch(
    /^bad snapshot header at byte \d+: not valid CBOR \(refused CBOR: tag 1 at byte 0\)$/,
  );
  const taggedEnd = { kind: FrameKind.End, payload: Uint8Array.from([0xc2, 0x41, 0x01]) };
  expect(await refusal(forge([headerFrame(h), block(raw), taggedEnd]))).toMatch(/^bad snapshot end frame at byte \d+: not valid CBOR$/);
});
