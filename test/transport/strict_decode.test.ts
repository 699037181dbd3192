// The strict decoder (lib/codec + lib/cbor_check): every tag the project does not write, indefinite
// lengths, odd simple values and deep nesting are refused with BAD_REQUEST; whatever it accepts decodes
// exactly as cbor-x would. Then the same hostile input as RPC request headers over real TCP: each
// stream gets a clean BAD_REQUEST and the session lives; headers have their own 64 KiB limit.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Decoder } from "cbor-x";
import { z } from "zod";
import { decode, decodeCopying, decodeMultiple, encode } from "../../src/lib/codec.ts";
import { EdgeError } from "../../src/lib/errors.ts";
import { MAX_CBOR_DEPTH, MAX_RPC_HEADER_BYTES } from "../../src/lib/limits.ts";
import type { MuxSession } from "../../src/transport/mux_session.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { encodeFrame, FrameReader } from "../../src/transport/rpc_frame.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import { mulberry32 } from "../support/mulberry32.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const plain = new Decoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });

/** A CBOR head: major type and argument, in the shortest form. */
function head(major: number, n: number): number[] {
  const m = major << 5;
  if (n < 24) return [m | n];
  if (n < 0x100) return [m | 24, n];
  if (n < 0x10000) return [m | 25, n >> 8, n & 0xff];
  return [m | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof EdgeError ? e.code : `not an EdgeError: ${String(e)}`;
  }
}

const bignum = (bytes: number) => Uint8Array.from([...head(6, 2), ...head(2, bytes), ...new Array<number>(bytes).fill(0xff)]);
const nested = (depth: number) => Uint8Array.from([...new Array<number>(depth).fill(0x81), 0x00]);

test("every tag cbor-x would act on is refused with BAD_REQUEST, by each decode entry point", () => {
  const tagged: [string, number[]][] = [
    ["date string", [...head(6, 0), ...head(3, 1), 0x61]],
    ["epoch date", [...head(6, 1), 0x01]],
    ["bignum", [...head(6, 2), ...head(2, 9), 1, 0, 0, 0, 0, 0, 0, 0, 0]],
    ["negative bignum", [...head(6, 3), ...head(2, 1), 1]],
    ["decimal fraction", [...head(6, 4), 0x82, 0x01, 0x01]],
    ["packed reference", [...head(6, 6), 0x00]],
    ["regexp / error / generic object", [...head(6, 27), 0x82, 0x61, 0x45, 0x60]],
    ["shared reference", [...head(6, 28), 0x80]],
    ["shared reference use", [...head(6, 29), 0x00]],
    ["packed table", [...head(6, 51), 0x80]],
    ["typed array (Float64Array)", [...head(6, 86), ...head(2, 8), 0, 0, 0, 0, 0, 0, 0, 0]],
    ["typed array (Uint8Array)", [...head(6, 64), ...head(2, 1), 7]],
    ["legacy record", [...head(6, 105), 0x80]],
    ["set", [...head(6, 258), 0x81, 0x01]],
    ["map as tag", [...head(6, 259), 0xa1, 0x01, 0x02]],
    ["bundled strings", [...head(6, 0xdff9), 0x80]],
    ["record definition", [...head(6, 0xdffe), 0x80]],
    ["inline record", [...head(6, 0xdfff), 0x80]],
    ["self-describe", [...head(6, 55799), 0x01]],
    ["tag inside a map value", [0xa1, 0x61, 0x61, ...head(6, 2), 0x41, 0x01]],
  ];
  for (const [what, bytes] of tagged) {
    const b = Uint8Array.from(bytes);
    expect({ what, code: codeOf(() => decode(b)) }).toEqual({ what, code: "BAD_REQUEST" });
    expect({ what, code: codeOf(() => decodeCopying(b)) }).toEqual({ what, code: "BAD_REQUEST" });
    expect({ what, code: codeOf(() => decodeMultiple(Uint8Array.from([0x01, ...bytes]))) }).toEqual({ what, code: "BAD_REQUEST" });
  }
});

test("indefinite lengths, breaks and simple values the encoder never writes are refused", () => {
  for (const bytes of [[0x9f, 0x01, 0xff], [0xbf, 0xff], [0x5f, 0x41, 0x00, 0xff], [0xff], [0xf0], [0xf8, 0x20], [0x1c], [0x81, 0xfe]]) {
    expect({ bytes, code: codeOf(() => decode(Uint8Array.from(bytes))) }).toEqual({ bytes, code: "BAD_REQUEST" });
  }
});

test(`nesting is bounded at ${MAX_CBOR_DEPTH}: the bound decodes, one more and 100,000 more are refused`, () => {
  expect(codeOf(() => decode(nested(MAX_CBOR_DEPTH)))).toBeUndefined();
  expect(codeOf(() => decode(nested(MAX_CBOR_DEPTH + 1)))).toBe("BAD_REQUEST");
  expect(codeOf(() => decode(nested(100_000)))).toBe("BAD_REQUEST");
  // Maps count too, as values and as keys.
  const maps = Uint8Array.from([...new Array<number>(MAX_CBOR_DEPTH + 1).fill(0).flatMap(() => [0xa1, 0x00]), 0x00]);
  expect(codeOf(() => decode(maps))).toBe("BAD_REQUEST");
});

test("the 192 KiB bignum that took seconds of the event loop is refused before any of it is decoded", () => {
  expect(codeOf(() => decode(bignum(192 * 1024)))).toBe("BAD_REQUEST");
  expect(codeOf(() => decodeMultiple(bignum(192 * 1024)))).toBe("BAD_REQUEST");
});

test("what the project's encoder writes decodes unchanged: the values it stores and sends carry no tag", () => {
  const values: unknown[] = [
    { t: "vars", v: { Path: "a/b", Items: { k: "v".repeat(300) }, CreateIndex: 3, ModifyIndex: 2 ** 40, Lock: null } },
    { type: "append", term: 7, entries: [{ index: 9, term: 7, data: new Uint8Array([1, 2, 3]) }], commit: 2 ** 53 - 1 },
    { Method: "Var.Put", Region: "global", AuthToken: "t", Args: { items: { a: "b" } }, Timeout: 5000 },
    { big: 2n ** 63n, neg: -(2n ** 63n), f: 1.5, f32: 0.1, nan: Number.NaN, inf: -Infinity, u: undefined, b: [true, false, null] },
    { Chunk: new Uint8Array(70_000).fill(5) },
    JSON.parse('{"__proto__x": 1, "": "", "é": "ü\\ud800"}'),
    "x".repeat(100_000),
    -1,
    [[[[[[[[[[1]]]]]]]]]],
  ];
  for (const v of values) {
    const b = encode(v);
    expect(decode(b)).toEqual(plain.decode(b));
    expect(decodeCopying(b)).toEqual(plain.decode(b));
  }
  const seq = Buffer.concat(values.map((v) => encode(v)));
  expect(decodeMultiple(seq)).toEqual(plain.decodeMultiple(seq) as unknown[]);
});

/** Random CBOR: values with tags or too-deep nesting sprinkled in; `bad` says whether any went in. */
function hostile(r: () => number): { bytes: Uint8Array; bad: boolean } {
  const out: number[] = [];
  let bad = false;
  const int = (n: number) => Math.floor(r() * n);
  const tags = [0, 1, 2, 3, 4, 5, 6, 21, 27, 28, 29, 51, 64, 72, 86, 105, 258, 259, 55799, 0xdff9, 0xdffe, 0xdfff, 65536];
  const item = (depth: number): void => {
    const k = int(depth > 6 ? 5 : 9);
    if (k === 0) out.push(...head(0, int(100_000)));
    else if (k === 1) out.push(...head(1, int(1000)));
    else if (k === 2) {
      const n = int(40);
      out.push(...head(3, n), ...new Array<number>(n).fill(0x61));
    } else if (k === 3) {
      const n = int(40);
      out.push(...head(2, n), ...new Array<number>(n).fill(int(256)));
    } else if (k === 4) out.push([0xf4, 0xf5, 0xf6, 0xf7][int(4)]!);
    else if (k === 5) {
      const n = int(5);
      out.push(...head(4, n));
      for (let i = 0; i < n; i++) item(depth + 1);
    } else if (k === 6) {
      const n = int(4);
      out.push(...head(5, n));
      for (let i = 0; i < n; i++) {
        out.push(...head(3, 1), 0x61 + i);
        item(depth + 1);
      }
    } else if (k === 7) {
      bad = true;
      out.push(...head(6, tags[int(tags.length)]!));
      if (r() < 0.3) out.push(...head(2, 2048), ...new Array<number>(2048).fill(0xff));
      else item(depth + 1);
    } else {
      const n = MAX_CBOR_DEPTH + 1 + int(20_000);
      if (depth + n > MAX_CBOR_DEPTH) bad = true;
      out.push(...new Array<number>(n).fill(0x81), 0x00);
    }
  };
  out.push(0xa1, 0x64, ...new TextEncoder().encode("Args"));
  item(1);
  return { bytes: Uint8Array.from(out), bad };
}

test(`fuzz: 20,000 random hostile items; refused exactly when tagged or too deep, else as cbor-x decodes (seed ${SEED})`, () => {
  const r = mulberry32(SEED);
  let refused = 0;
  try {
    for (let i = 0; i < 20_000; i++) {
      const { bytes, bad } = hostile(r);
      const code = codeOf(() => decode(bytes));
      if (bad) {
        expect(code).toBe("BAD_REQUEST");
        refused++;
      } else expect(decode(bytes)).toEqual(plain.decode(bytes));
    }
  } catch (e) {
    console.error(`strict decode fuzz failed with seed ${SEED} (rerun with FUZZ_SEED=${SEED})`);
    throw e;
  }
  expect(refused).toBeGreaterThan(2_000);
});

let server: RpcServer;
let addr: string;
let pool: ConnPool;
beforeAll(async () => {
  server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "x", Name: "x", Region: "r", Version: "v" }) });
  server.unary("Echo.Args", z.unknown(), async (a) => a);
  server.stream("Echo.Count", z.unknown(), async (_a, _c, stream) => {
    let n = 0;
    for await (const c of stream) n += c.length;
    await stream.send(new TextEncoder().encode(String(n)));
  });
  addr = `127.0.0.1:${(await server.listen()).port}`;
  pool = new ConnPool();
});
afterAll(async () => {
  await pool.close();
  await server.close(0);
});

/** Open a stream, send `header` as its length-prefixed request header, and return the first frame back. */
async function rawCall(session: MuxSession, header: Uint8Array): Promise<unknown> {
  const s = session.open();
  const framed = new Uint8Array(4 + header.length);
  new DataView(framed.buffer).setUint32(0, header.length);
  framed.set(header, 4);
  await s.write(framed);
  await s.closeWrite();
  return new FrameReader(s).next();
}

test(`fuzz over TCP: 300 hostile request headers each answer BAD_REQUEST on one live session (seed ${SEED})`, async () => {
  const r = mulberry32(SEED + 1);
  const session = await pool.session(addr);
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    let { bytes, bad } = hostile(r);
    if (!bad)
      [bytes, bad] = [Uint8Array.from([0xa1, 0x64, ...new TextEncoder().encode("Args"), ...bignum(1 + Math.floor(r() * 60_000))]), true];
    const reply = (await rawCall(
      session,
      Uint8Array.from([
        0xa2,
        0x66,
        ...new TextEncoder().encode("Method"),
        0x69,
        ...new TextEncoder().encode("Echo.Args"),
        ...bytes.subarray(1),
      ]),
    )) as { Error?: { Code: string } };
    expect(reply.Error?.Code).toBe("BAD_REQUEST");
    refused++;
  }
  expect(refused).toBe(300);
  expect(session.closed).toBe(false);
  expect(await pool.call(addr, "Echo.Args", { ok: 1 })).toEqual({ ok: 1 });
  expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
});

test("a bignum request header is refused as a tag, over the header limit as too large; the session goes on", async () => {
  const session = await pool.session(addr);
  const header = (n: number) => Uint8Array.from([0xa1, 0x66, ...new TextEncoder().encode("Method"), ...bignum(n)]);
  const small = (await rawCall(session, header(60 * 1024))) as { Error?: { Code: string; Message: string } };
  expect(small.Error?.Code).toBe("BAD_REQUEST");
  expect(small.Error?.Message).toContain("tag 2");
  expect(((await rawCall(session, header(192 * 1024))) as { Error?: { Code: string } }).Error?.Code).toBe("TOO_LARGE");
  expect(session.closed).toBe(false);
  expect(await pool.call(addr, "Echo.Args", [1, 2])).toEqual([1, 2]);
});

test(`request headers have their own ${MAX_RPC_HEADER_BYTES / 1024} KiB limit; data frames keep the larger one`, async () => {
  const session = await pool.session(addr);
  const big = encode({ Method: "Echo.Args", Args: "y".repeat(MAX_RPC_HEADER_BYTES) });
  expect(big.length).toBeGreaterThan(MAX_RPC_HEADER_BYTES);
  expect(((await rawCall(session, big)) as { Error?: { Code: string } }).Error?.Code).toBe("TOO_LARGE");
  const fits = "y".repeat(MAX_RPC_HEADER_BYTES - 100);
  expect(await pool.call(addr, "Echo.Args", fits)).toBe(fits);
  // A 1 MiB data frame on a streaming call is fine.
  const s = session.open();
  await s.write(encodeFrame({ Method: "Echo.Count" }));
  const reader = new FrameReader(s);
  expect(await reader.next()).toEqual({ Reply: null });
  await s.write(encodeFrame({ Chunk: new Uint8Array(1 << 20) }));
  await s.write(encodeFrame({ End: true }));
  const got = (await reader.next()) as { Chunk?: Uint8Array };
  expect(new TextDecoder().decode(got.Chunk)).toBe(String(1 << 20));
  expect(session.closed).toBe(false);
});
