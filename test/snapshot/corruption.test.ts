// Damaged and foreign files: every flipped byte, truncation, appended byte, newer version, forged frame
// and non-snapshot input must be refused by the verifying reader with a message saying what is wrong.

import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import * as zlib from "node:zlib";
import { encode } from "../../src/lib/codec.ts";
import { concatBytes } from "../../src/lib/bytes.ts";
import {
  FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  FrameKind,
  PREAMBLE_BYTES,
  SnapshotFormatError,
  TRAILER_BYTES,
  encodePreamble,
  parseFrameHeader,
} from "../../src/snapshot/format.ts";
import { readSnapshot, verifySnapshot } from "../../src/snapshot/reader.ts";
import { encodeSnapshot } from "../../src/snapshot/writer.ts";
import { chunked, collect, forge, header, headerFrame, rng, textPool, variableRecords } from "./fixture.ts";

// Whole-file passes over a few MiB, hundreds of times: generous on a loaded 2-core box.
setDefaultTimeout(60_000);

const SEED = Number(process.env.EDGENODE_SEED ?? Date.now() % 1_000_000);

interface Layout {
  frames: { kind: number; at: number; payloadAt: number; end: number }[];
  trailerAt: number;
}

function layout(bytes: Uint8Array): Layout {
  const frames: Layout["frames"] = [];
  let at = PREAMBLE_BYTES;
  for (;;) {
    const fh = parseFrameHeader(bytes.subarray(at, at + FRAME_HEADER_BYTES), at);
    const payloadAt = at + FRAME_HEADER_BYTES;
    frames.push({ kind: fh.kind, at, payloadAt, end: payloadAt + fh.stored });
    at = payloadAt + fh.stored;
    if (fh.kind === FrameKind.End) return { frames, trailerAt: at };
  }
}

/** Verify, expecting refusal; returns the message. Fails the test (naming the case and seed) if accepted. */
async function refused(bytes: Uint8Array, what: string, seed = SEED): Promise<string> {
  try {
    // Alternate inline and pipelined decompression: both must refuse the same way.
    await verifySnapshot(chunked(bytes, seed), { pipeline: seed % 2 === 0 ? 0 : 2 });
  } catch (e) {
    if (!(e instanceof SnapshotFormatError)) throw new Error(`${what} (seed ${SEED}): threw a non-format error: ${String(e)}`);
    expect(e.code).toBe("BAD_SNAPSHOT");
    expect(e.message.length).toBeGreaterThan(10);
    return e.message;
  }
  throw new Error(`${what} (seed ${SEED}): a damaged file verified`);
}

let good: Uint8Array;
let lay: Layout;

beforeAll(async () => {
  // About 3 MiB raw: several blocks, so there is a body start, middle and end.
  const { counts, records } = variableRecords(3000, textPool(7));
  good = await collect(encodeSnapshot(header(counts), records()));
  lay = layout(good);
  const v = await verifySnapshot(chunked(good, 1));
  expect(v.records).toBe(3010);
});

describe("flipped bytes", () => {
  function flip(pos: number, mask = 0x01): Uint8Array {
    const b = good.slice();
    b[pos] = b[pos]! ^ mask;
    return b;
  }

  test("in the preamble, including the version field, read as corrupt, never as a newer version", async () => {
    for (let pos = 0; pos < PREAMBLE_BYTES; pos++) {
      for (const mask of [0x01, 0x80]) {
        const msg = await refused(flip(pos, mask), `preamble byte ${pos}`);
        if (pos < 8) expect(msg).toBe("corrupt snapshot: the magic number (bytes 0-7) is damaged");
        else expect(msg).toMatch(/corrupt snapshot: the preamble .* fails its checksum/);
        expect(msg).not.toMatch(/newer/);
      }
    }
  });

  test("in every frame header, payload start, middle and end, and the trailer", async () => {
    expect(lay.frames.filter((f) => f.kind === FrameKind.Block).length).toBeGreaterThanOrEqual(3);
    for (const f of lay.frames) {
      for (let pos = f.at; pos < f.payloadAt; pos++) {
        expect(await refused(flip(pos), `frame header byte ${pos}`)).toMatch(new RegExp(`frame header at byte ${f.at} fails its checksum`));
      }
      const len = f.end - f.payloadAt;
      for (const pos of [f.payloadAt, f.payloadAt + (len >> 1), f.end - 1]) {
        const msg = await refused(flip(pos), `payload byte ${pos} of frame at ${f.at}`);
        expect(msg).toMatch(
          new RegExp(`corrupt snapshot: \\w+ frame at byte ${f.at} fails its checksum|block at byte ${f.at} fails its checksum`),
        );
      }
    }
    for (let pos = lay.trailerAt; pos < good.length; pos++) {
      expect(await refused(flip(pos), `trailer byte ${pos}`)).toMatch(
        /^checksum mismatch: the SHA-256 of bytes 0-\d+ is [0-9a-f]{64} but the trailer says [0-9a-f]{64}$/,
      );
    }
  });

  test(`at 200 random positions (seed ${SEED})`, async () => {
    const r = rng(SEED);
    for (let i = 0; i < 200; i++) {
      const pos = Math.floor(r() * good.length);
      const mask = 1 << Math.floor(r() * 8);
      await refused(flip(pos, mask), `random flip at ${pos} mask ${mask}`, SEED + i);
    }
  });
});

describe("inserted and deleted bytes", () => {
  test(`a byte inserted or deleted anywhere shifts the framing and is refused (seed ${SEED})`, async () => {
    const r = rng(SEED + 1);
    const positions = [0, 8, 12, 16, 36, lay.trailerAt, good.length - 1];
    for (let i = 0; i < 40; i++) positions.push(Math.floor(r() * good.length));
    for (const pos of positions) {
      const inserted = new Uint8Array(Buffer.concat([good.subarray(0, pos), new Uint8Array([Math.floor(r() * 256)]), good.subarray(pos)]));
      await refused(inserted, `byte inserted at ${pos}`);
      const deleted = new Uint8Array(Buffer.concat([good.subarray(0, pos), good.subarray(pos + 1)]));
      await refused(deleted, `byte deleted at ${pos}`);
    }
  });

  test("a whole block frame removed or duplicated is refused", async () => {
    const block = lay.frames.find((f, i) => f.kind === FrameKind.Block && i > 1)!;
    const removed = new Uint8Array(Buffer.concat([good.subarray(0, block.at), good.subarray(block.end)]));
    expect(await refused(removed, "block removed")).toMatch(/checksum mismatch/);
    const doubled = new Uint8Array(
      Buffer.concat([good.subarray(0, block.end), good.subarray(block.at, block.end), good.subarray(block.end)]),
    );
    expect(await refused(doubled, "block duplicated")).toMatch(/checksum mismatch/);
  });
});

describe("truncation and appended bytes", () => {
  test(`truncation at boundaries and random lengths (seed ${SEED}) says truncated at that byte`, async () => {
    const lengths = new Set<number>([
      1,
      7,
      8,
      15,
      16,
      17,
      35,
      36,
      good.length - 1,
      good.length - TRAILER_BYTES,
      good.length - TRAILER_BYTES - 1,
    ]);
    for (const f of lay.frames)
      for (const n of [f.at, f.at + 1, f.payloadAt, f.payloadAt + 1, (f.payloadAt + f.end) >> 1, f.end - 1]) lengths.add(n);
    const r = rng(SEED);
    for (let i = 0; i < 60; i++) lengths.add(1 + Math.floor(r() * (good.length - 1)));
    for (const n of lengths) {
      const msg = await refused(good.subarray(0, n), `truncated to ${n}`);
      expect(msg).toStartWith(`snapshot truncated at byte ${n}:`);
    }
  });

  test("an empty input is refused as empty", async () => {
    expect(await refused(new Uint8Array(0), "empty")).toBe("not a snapshot file: it is empty");
  });

  test("appended bytes are refused as trailing, however many", async () => {
    for (const extra of [new Uint8Array([0]), new Uint8Array(100).fill(0x41), good]) {
      const b = new Uint8Array(Buffer.concat([good, extra]));
      expect(await refused(b, `${extra.length} appended bytes`)).toBe(
        `${extra.length} unexpected trailing bytes after the end of the snapshot at byte ${good.length}`,
      );
    }
  });

  test("a source that fails mid-stream (an aborted upload) surfaces its own error, never a verified file", async () => {
    async function* aborted(): AsyncGenerator<Uint8Array> {
      yield good.subarray(0, good.length >> 1);
      throw new DOMException("The operation was aborted.", "AbortError");
    }
    await expect(verifySnapshot(aborted())).rejects.toThrow(/aborted/);
  });

  test("the streaming reader yields records but throws at the end for a damaged trailer", async () => {
    const b = good.slice();
    b[b.length - 1] = b[b.length - 1]! ^ 1;
    const reader = readSnapshot(chunked(b, 3));
    let n = 0;
    let err: unknown;
    try {
      for await (const _ of reader.records) n++;
    } catch (e) {
      err = e;
    }
    expect(n).toBe(3010);
    expect(String(err)).toMatch(/checksum mismatch/);
    expect(reader.result).toBeUndefined();
  });
});

describe("versions and foreign files", () => {
  test("a newer format version is refused naming both versions, before the body is read", async () => {
    const b = good.slice();
    b.set(encodePreamble(FORMAT_VERSION + 1), 0);
    expect(await refused(b, "newer version")).toBe(
      `snapshot format version ${FORMAT_VERSION + 1} is newer than this edgenode supports (format version ${FORMAT_VERSION}); restore it with a newer edgenode`,
    );
    // Only the preamble is needed to refuse it: the rest may be anything.
    const onlyPreamble = encodePreamble(7);
    expect(await refused(onlyPreamble, "newer version, preamble only")).toMatch(
      new RegExp(`version 7 is newer .*format version ${FORMAT_VERSION}`),
    );
    expect(await refused(encodePreamble(0), "version 0")).toMatch(/unsupported snapshot format version 0/);
  });

  test(`random bytes, a text file and other formats are not snapshots (seed ${SEED})`, async () => {
    const r = rng(SEED);
    const random = new Uint8Array(4096).map(() => Math.floor(r() * 256));
    random[0] = 0x12;
    expect(await refused(random, "random bytes")).toMatch(/^not a snapshot file: it does not start with the edgenode snapshot magic$/);
    const text = new TextEncoder().encode('region = "global"\nserver { enabled = true }\n');
    expect(await refused(text, "text")).toMatch(/not a snapshot file: .* \(it looks like text\)/);
    expect(await refused(zlib.gzipSync(good), "gzip")).toMatch(/^not a snapshot file/);
    expect(await refused(new Uint8Array([0x89]), "one magic byte")).toMatch(/^snapshot truncated at byte 1: the preamble needs 16 bytes/);
  });
});

describe("forged files with valid checksums reach the structural checks", () => {
  const h = { ...header({ vars: 1 }), formatVersion: FORMAT_VERSION };
  const rec = (v: unknown) => encode({ t: "vars", v });
  const block = (raw: Uint8Array) => ({ kind: FrameKind.Block, payload: zlib.zstdCompressSync(raw), raw: raw.length });
  const end = (records: number, blocks: number, rawBytes: number) => ({
    kind: FrameKind.End,
    payload: encode({ records, blocks, rawBytes }),
  });

  test("a well-formed forgery verifies (the forger is right)", async () => {
    const raw = rec(1);
    const v = await verifySnapshot(chunked(forge([headerFrame(h), block(raw), end(1, 1, raw.length)]), 1));
    expect(v.counts).toEqual({ vars: 1 });
  });

  test("records of several tables interleaved in and across blocks are counted per table", async () => {
    const counts = { vars: 3, acl_tokens: 2, acl_meta: 1 };
    const hh = { ...header(counts), formatVersion: FORMAT_VERSION };
    const r = (t: string, v: unknown) => encode({ t, v });
    const b1 = concatBytes([r("vars", 1), r("acl_tokens", 2), r("vars", 3), r("vars", 4)]);
    const b2 = concatBytes([r("acl_meta", 5), r("acl_tokens", 6)]);
    const frames = [headerFrame(hh), block(b1), block(b2), end(6, 2, b1.length + b2.length)];
    expect((await verifySnapshot(chunked(forge(frames), 3))).counts).toEqual(counts);
    const off = [headerFrame({ ...hh, counts: { ...counts, vars: 2, acl_tokens: 3 } }), ...frames.slice(1)];
    await expect(verifySnapshot(chunked(forge(off), 3))).rejects.toThrow(/table "vars" holds 3 records but the header declares 2/);
  });

  test("structural faults each get their own message", async () => {
    const raw = rec(1);
    const cases: [Uint8Array, RegExp][] = [
      [
        forge([headerFrame({ ...h, counts: { vars: 2 } }), block(raw), end(1, 1, raw.length)]),
        /table "vars" holds 1 records but the header declares 2/,
      ],
      [
        forge([headerFrame(h), block(encode({ t: "other", v: 1 })), end(1, 1, 11)]),
        /bad record 0 in block at byte \d+: table "other" is not listed/,
      ],
      [forge([headerFrame(h), block(encode(5)), end(1, 1, 1)]), /bad record 0 in block at byte \d+: not a map \{t: string, v\}/],
      [forge([headerFrame(h), block(encode({ t: "vars" })), end(1, 1, 9)]), /not a map \{t: string, v\}/],
      [
        forge([headerFrame(h), block(raw.subarray(0, raw.length - 1)), end(1, 1, raw.length - 1)]),
        /bad record in block at byte \d+ \(after record 0\): not valid CBOR/,
      ],
      [forge([headerFrame(h), block(raw), end(2, 1, raw.length)]), /the end frame declares 2 records in 1 blocks/],
      [
        forge([headerFrame(h), block(raw)]).subarray(0, -TRAILER_BYTES),
        /^snapshot truncated at byte \d+: a frame header at byte \d+ needs 20 bytes$/,
      ],
      [forge([block(raw), end(1, 1, raw.length)]), /expected the header frame at byte 16, found a block frame/],
      [forge([headerFrame(h), headerFrame(h), end(0, 0, 0)]), /unexpected header frame at byte/],
      [forge([headerFrame({ ...h, formatVersion: 2 }), end(0, 0, 0)], 1), /header says format version 2 but the preamble says 1/],
      [forge([headerFrame({ ...h, created: "yesterday" }), end(0, 0, 0)]), /created "yesterday" is not an RFC 3339 time/],
      [forge([headerFrame({ ...h, created: "2026-01-02" }), end(0, 0, 0)]), /created "2026-01-02" is not an RFC 3339 time/],
      [
        forge([headerFrame({ ...h, counts: JSON.parse('{"__proto__": 1}') }), end(0, 0, 0)]),
        /table "__proto_" holds 0 records but the header declares 1/,
      ], // cbor-x renames the key on decode
      [forge([headerFrame({ ...h, index: 2 ** 53 }), end(0, 0, 0)]), /index must be a non-negative integer/],
      [forge([headerFrame({ ...h, counts: { ["x".repeat(129)]: 0 } }), end(0, 0, 0)]), /table name must be 1 to 128 characters/],
      [forge([headerFrame({ ...h, producer: undefined }), end(0, 0, 0)]), /producer must be a string/],
      [
        forge([{ kind: FrameKind.Header, payload: new Uint8Array([0xff, 0xff]) }, end(0, 0, 0)]),
        /bad snapshot header at byte 16: not valid CBOR/,
      ],
      [forge([headerFrame(h), { kind: 9 as FrameKind, payload: new Uint8Array(1) }]), /unexpected unknown\(9\) frame/],
    ];
    for (const [bytes, re] of cases) expect(await refused(bytes, String(re))).toMatch(re);
  });

  test("a header frame declaring more than the header limit is refused before it is read", async () => {
    const frameHeader = good.slice(0, PREAMBLE_BYTES + FRAME_HEADER_BYTES);
    const huge = forge([{ kind: FrameKind.Header, payload: new Uint8Array(0), raw: 0 }]).slice(0, PREAMBLE_BYTES + FRAME_HEADER_BYTES);
    // Rewrite the stored/raw lengths to 2 GiB and re-seal the frame header's own CRC.
    const view = new DataView(huge.buffer);
    view.setUint32(PREAMBLE_BYTES + 4, 2 ** 31);
    view.setUint32(PREAMBLE_BYTES + 8, 2 ** 31);
    view.setUint32(PREAMBLE_BYTES + 16, Bun.hash.crc32(huge.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + 16)) >>> 0);
    expect(frameHeader.length).toBe(huge.length);
    expect(await refused(huge, "huge header")).toMatch(/header frame at byte 16 is 2147483648 bytes \(limit 1048576/);
  });

  test(`fuzz: forged blocks of random or mutated CBOR verify or are refused as BAD_SNAPSHOT, nothing else (seed ${SEED})`, async () => {
    const r = rng(SEED + 2);
    const valid: Uint8Array[] = [];
    for (let i = 0; i < 20; i++)
      valid.push(encode({ t: "vars", v: { Path: `p/${i}`, Items: { k: "x".repeat(i * 10) }, N: i, B: new Uint8Array(i) } }));
    const base = new Uint8Array(Buffer.concat(valid));
    let refusedCount = 0;
    for (let i = 0; i < 300; i++) {
      let raw: Uint8Array;
      if (i % 2 === 0) {
        raw = new Uint8Array(1 + Math.floor(r() * 2000)).map(() => Math.floor(r() * 256));
      } else {
        raw = base.slice();
        for (let k = 0; k < 1 + Math.floor(r() * 4); k++) raw[Math.floor(r() * raw.length)] = Math.floor(r() * 256);
      }
      const bytes = forge([headerFrame({ ...h, counts: { vars: 20 } }), block(raw), end(20, 1, raw.length)]);
      try {
        await verifySnapshot(chunked(bytes, i));
      } catch (e) {
        if (!(e instanceof SnapshotFormatError)) throw new Error(`fuzz case ${i} (seed ${SEED}) threw ${String(e)}`);
        refusedCount++;
      }
    }
    // Every random block and most mutated ones are refused; a mutation inside a string may still verify.
    expect(refusedCount).toBeGreaterThanOrEqual(150);
  });

  test("a record nested deeper than the decoder's stack is refused as bad CBOR, not a crash", async () => {
    const depth = 200_000;
    // {t: "vars", v: [[[[...0...]]]]}
    const raw = new Uint8Array(10 + depth + 1);
    raw.set([0xa2, 0x61, 0x74, 0x64, 0x76, 0x61, 0x72, 0x73, 0x61, 0x76], 0);
    raw.fill(0x81, 10, 10 + depth);
    const bytes = forge([headerFrame(h), block(raw), end(1, 1, raw.length)]);
    expect(await refused(bytes, "deep nesting")).toMatch(/bad record in block at byte \d+ \(after record 0\): not valid CBOR/);
  });

  test("a block that inflates past its declared size is refused without inflating it all", async () => {
    const bomb = zlib.zstdCompressSync(new Uint8Array(64 << 20));
    const bytes = forge([headerFrame(h), { kind: FrameKind.Block, payload: bomb, raw: 100 }, end(0, 1, 100)]);
    expect(await refused(bytes, "bomb")).toMatch(
      /block at byte \d+ is not one zstd frame of its declared 100 bytes \(it declares 67108864\)/,
    );
    // A frame that declares the block's size, followed by a bomb: Bun's decompressor would inflate both.
    const small = Bun.zstdCompressSync(new Uint8Array(100), { level: 1 });
    const twice = new Uint8Array(small.length + bomb.length);
    twice.set(small);
    twice.set(bomb, small.length);
    const chained = forge([headerFrame(h), { kind: FrameKind.Block, payload: twice, raw: 100 }, end(0, 1, 100)]);
    expect(await refused(chained, "chained bomb")).toMatch(
      /block at byte \d+ is not one zstd frame of its declared 100 bytes \(malformed, several frames or no size\)/,
    );
    const over = forge([headerFrame(h), { kind: FrameKind.Block, payload: bomb, raw: 64 << 20 }, end(0, 1, 64 << 20)]);
    expect(await refused(over, "over limit")).toMatch(/declares \d+ stored \/ 67108864 raw bytes \(limits/);
  });
});
