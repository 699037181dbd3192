// The snapshot writer's record encoder against cbor-x (lib/codec), byte for byte: seeded random plain
// values (every string, number and nesting case the encoder mirrors), the space limit, and the values
// it must leave to cbor-x.

import { describe, expect, test } from "bun:test";
import { encode } from "../../src/lib/codec.ts";
import { NO_ROOM, RecordEncoder, UNSUPPORTED } from "../../src/snapshot/record_encoder.ts";
import { mulberry32 } from "../support/mulberry32.ts";
import { freshSeeds, replayCommand } from "../sim/fresh_seeds.ts";

const FILE = "test/snapshot/record_encoder.test.ts";

const SURROGATES = ["\ud800", "\udc00", "\ud83d\ude00", "\udfff\ud800"];

function randomString(r: () => number): string {
  // Mostly short (cbor-x's own loop below 64 units), sometimes long (its utf8Write path, 1- to 3-byte heads).
  const len = r() < 0.85 ? Math.floor(r() * 80) : Math.floor(70_000 * r() ** 3);
  const ascii = r() < 0.4;
  const parts: string[] = [];
  let n = 0;
  while (n < len) {
    const x = r();
    let p: string;
    if (ascii || x < 0.6) p = String.fromCharCode(0x20 + Math.floor(r() * 95));
    else if (x < 0.75) p = String.fromCharCode(0x80 + Math.floor(r() * 0x780));
    else if (x < 0.9) p = String.fromCharCode(0x800 + Math.floor(r() * 0xd000));
    else p = SURROGATES[Math.floor(r() * SURROGATES.length)]!;
    parts.push(p);
    n += p.length;
  }
  return parts.join("").slice(0, len);
}

const EDGE_NUMBERS = [
  0,
  -0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  0xffffffff,
  2 ** 32,
  2 ** 53 - 1,
  -1,
  -24,
  -25,
  -256,
  -257,
  -65536,
  -65537,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 32),
  -(2 ** 32) - 1,
  1.5,
  -0.25,
  1e300,
  Number.NaN,
  Infinity,
  -Infinity,
  1_700_000_000_000,
];

function randomNumber(r: () => number): number {
  const x = r();
  if (x < 0.3) return EDGE_NUMBERS[Math.floor(r() * EDGE_NUMBERS.length)]!;
  if (x < 0.6) return Math.floor(r() * 2 ** (r() * 53));
  if (x < 0.8) return -Math.floor(r() * 2 ** (r() * 40));
  return (r() - 0.5) * 10 ** Math.floor(r() * 20);
}

function randomValue(r: () => number, depth: number): unknown {
  const x = r();
  if (depth > 2 || x < 0.3) return randomString(r);
  if (x < 0.5) return randomNumber(r);
  if (x < 0.55) return [true, false, null, undefined][Math.floor(r() * 4)];
  if (x < 0.7) return Array.from({ length: Math.floor(r() * 28) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 8);
  for (let i = 0; i < n; i++) o[r() < 0.8 ? `K${Math.floor(r() * 50)}` : randomString(r).slice(0, 40)] = randomValue(r, depth + 1);
  return o;
}

function fastEncode(e: RecordEncoder, t: string, v: unknown, space = 1 << 20): Uint8Array | number {
  const out = new Uint8Array(space + 16);
  const at = 16;
  const end = e.encodeInto(t, v, out, at, at + space);
  return end < 0 ? end : out.slice(at, end);
}

/** A seeded random value: the encoder writes cbor-x's bytes in any space from exactly enough up, and NO_ROOM in one byte less. */
function sameBytesAsCborX(e: RecordEncoder, seed: number, replay: (seed: number) => string): void {
  const r = mulberry32(seed);
  const v = randomValue(r, 0);
  const t = r() < 0.5 ? "vars" : randomString(r).slice(0, 100);
  const want = encode({ t, v }).slice();
  const fail = (what: string): never => {
    console.log(`FAIL seed ${seed}; replay: ${replay(seed)}`);
    throw new Error(`seed ${seed}: ${what}; replay: ${replay(seed)}`);
  };
  // Any space from exactly enough up: the bytes must not depend on it.
  const got = fastEncode(e, t, v, want.length + Math.floor(r() * 3) * Math.floor(r() * 100_000));
  if (typeof got === "number") fail(`the encoder refused a plain value (${got})`);
  else if (Buffer.compare(Buffer.from(got), Buffer.from(want)) !== 0) fail(`bytes differ from cbor-x (${got.length} vs ${want.length})`);
  if (fastEncode(e, t, v, want.length - 1) !== NO_ROOM) fail("one byte short was not NO_ROOM");
}

describe("snapshot record encoder", () => {
  test("the same bytes as cbor-x for seeded random plain values: seeds 1..150", () => {
    const e = new RecordEncoder();
    for (let seed = 1; seed <= 150; seed++) sameBytesAsCborX(e, seed, (s) => replayCommand(FILE, s));
  }, 60_000);

  test("the same bytes as cbor-x for seeded random plain values: fresh seeds from the clock", () => {
    const e = new RecordEncoder();
    const fresh = freshSeeds("record encoder against cbor-x", FILE, 100);
    for (let seed = fresh.base; seed < fresh.base + fresh.count; seed++) sameBytesAsCborX(e, seed, (s) => fresh.replay(s));
  }, 60_000);

  test("a variable row as the state machine stores it", () => {
    const v = {
      Path: "a/b",
      Items: { data: "x".repeat(1000), é: "\u{1F600}" },
      Lock: { ID: "id-1", TTL: 15000, LockDelay: 0 },
      LockDelayUntil: 1_700_000_000_123,
      CreateIndex: 7,
      ModifyIndex: 70000,
      CreateTime: 1_700_000_000_000,
      ModifyTime: 1_700_000_000_001,
    };
    expect(fastEncode(new RecordEncoder(), "vars", v)).toEqual(new Uint8Array(encode({ t: "vars", v })));
  });

  test("exactly the space it needs: one byte less is NO_ROOM, for short and long strings at the end", () => {
    const e = new RecordEncoder();
    for (const v of [{ a: 1 }, { s: "x".repeat(63) }, { s: "é".repeat(300) }, { s: "y".repeat(5000), n: [1, 2, 3] }]) {
      const want = encode({ t: "vars", v });
      expect(fastEncode(e, "vars", v, want.length)).toEqual(new Uint8Array(want));
      expect(fastEncode(e, "vars", v, want.length - 1)).toBe(NO_ROOM);
    }
  });

  test("reusing the encoder on a new buffer writes only inside [at, end)", () => {
    const e = new RecordEncoder();
    const v = { Path: "p", Items: { k: "v".repeat(200) } };
    const want = encode({ t: "vars", v });
    for (const at of [0, 5, 100]) {
      const out = new Uint8Array(at + want.length + 10).fill(0xaa);
      const end = e.encodeInto("vars", v, out, at, at + want.length);
      expect(end).toBe(at + want.length);
      expect(out.subarray(at, end)).toEqual(new Uint8Array(want));
      expect(out.subarray(0, at).every((b) => b === 0xaa) && out.subarray(end).every((b) => b === 0xaa)).toBe(true);
    }
  });

  test("values cbor-x encodes its own way are UNSUPPORTED, wherever they sit", () => {
    const e = new RecordEncoder();
    class Row {
      a = 1;
    }
    const odd: unknown[] = [
      new Uint8Array([1, 2]),
      10n,
      new Date(0),
      new Map([["a", 1]]),
      new Row(),
      Object.create(null),
      { constructor: 1 },
      { hasOwnProperty: 2 },
      Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, 1])),
    ];
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    odd.push(deep);
    for (const v of odd) {
      expect(fastEncode(e, "vars", v, 16 << 20)).toBe(UNSUPPORTED);
      expect(fastEncode(e, "vars", { Items: { x: "ok", y: [v] } }, 16 << 20)).toBe(UNSUPPORTED);
    }
  });
});
