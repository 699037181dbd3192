// A block is decompressed natively only when it is exactly one zstd frame declaring its size
// (src/snapshot/zstd_frame.ts): Bun's decompressor takes no output bound and would inflate every
// frame it found, so anything else must be told apart from the header alone.
import { expect, test } from "bun:test";
import { zstdFrameContentSize } from "../../src/snapshot/zstd_frame.ts";

function data(n: number, seed = 1): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 31 + seed * 7 + (i >> 9)) % 251;
  return a;
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
};

test("the size of a one-shot frame, for every size class of its header's content size field", () => {
  for (const n of [1, 200, 255, 256, 300, 65_791, 65_792, 262_144, 1 << 20]) {
    const f = Bun.zstdCompressSync(data(n), { level: 1 });
    expect(zstdFrameContentSize(f)).toBe(n);
    expect(Bun.zstdDecompressSync(f).length).toBe(n);
  }
  // Run-length and raw blocks walk the same way.
  expect(zstdFrameContentSize(Bun.zstdCompressSync(new Uint8Array(300_000).fill(9), { level: 1 }))).toBe(300_000);
  const random = crypto.getRandomValues(new Uint8Array(60_000));
  expect(zstdFrameContentSize(Bun.zstdCompressSync(random, { level: 1 }))).toBe(60_000);
});

test("anything but exactly one frame with its size is refused: two frames, trailing or missing bytes, other magic, no size", () => {
  const f = Bun.zstdCompressSync(data(100_000), { level: 1 });
  const g = Bun.zstdCompressSync(data(100_000, 2), { level: 1 });
  expect(Bun.zstdDecompressSync(cat(f, g)).length).toBe(200_000); // what the guard is for
  expect(zstdFrameContentSize(cat(f, g))).toBeUndefined();
  expect(zstdFrameContentSize(cat(f, new Uint8Array([0])))).toBeUndefined();
  for (const cut of [1, 3, 5, 6, 9, f.length - 1]) expect(zstdFrameContentSize(f.subarray(0, cut))).toBeUndefined();
  const other = f.slice();
  other[0] = 0x50; // a skippable frame's magic
  expect(zstdFrameContentSize(other)).toBeUndefined();
  // The same frame header without a content size (FCS flag 0, not single-segment: a window byte instead).
  const noSize = cat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0b0000_0000, 0x58]), f.subarray(5 + 4));
  expect(zstdFrameContentSize(noSize)).toBeUndefined();
  const dict = f.slice();
  dict[4] = dict[4]! | 1; // a dictionary id flag
  expect(zstdFrameContentSize(dict)).toBeUndefined();
  expect(zstdFrameContentSize(new Uint8Array(0))).toBeUndefined();
});

test("a frame whose declared size is altered still fails to decompress: zstd checks the size it declares", () => {
  const n = 262_144;
  const f = Bun.zstdCompressSync(data(n), { level: 1 });
  const g = f.slice();
  new DataView(g.buffer).setUint32(5, n + 100_000, true);
  expect(zstdFrameContentSize(g)).toBe(n + 100_000);
  expect(() => Bun.zstdDecompressSync(g)).toThrow();
});
