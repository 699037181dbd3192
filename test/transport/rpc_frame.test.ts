// FrameReader over pieces cut at seeded random places: {Chunk} frames come out as buffers of their own,
// pieces copied whole are released, and nothing handed out as a view is.
import { expect, test } from "bun:test";
import { encodeFrame, FrameReader } from "../../src/transport/rpc_frame.ts";
import type { MuxStream } from "../../src/transport/mux_stream.ts";
import { mulberry32 } from "../support/mulberry32.ts";

/** A stream that yields `bytes` in fresh pieces (each the whole of its own buffer) of seeded random sizes. */
function pieces(bytes: Uint8Array, seed: number, max: number): { stream: MuxStream; handed: Uint8Array[] } {
  const r = mulberry32(seed);
  const handed: Uint8Array[] = [];
  let at = 0;
  const stream = {
    async read(): Promise<Uint8Array | null> {
      if (at >= bytes.length) return null;
      const n = 1 + Math.floor(r() * max);
      const p = Uint8Array.prototype.slice.call(bytes, at, at + n); // a copy (Buffer#slice is a view)
      at += n;
      handed.push(p);
      return p;
    },
  };
  return { stream: stream as unknown as MuxStream, handed };
}

const pattern = (n: number, k: number) => new Uint8Array(n).map((_, i) => (i * 31 + k) & 255);

test("chunk frames come out whole and exact, other frames decode as before, across every cut", async () => {
  const big = pattern(100_000, 1);
  const small = pattern(10, 2);
  const frames = [
    { Chunk: big },
    { Op: "x", Data: pattern(5000, 3) },
    { Chunk: small },
    { Chunk: new Uint8Array(0) },
    { Chunk: pattern(20, 4), Extra: 1 },
    { Chunk: big },
  ];
  const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
  let released = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const { stream, handed } = pieces(wire, seed, seed % 3 === 0 ? 300 : 70_000);
    const reader = new FrameReader(stream);
    const got: unknown[] = [];
    for (let f = await reader.next(); f !== null; f = await reader.next()) got.push(f);
    expect(got.length).toBe(frames.length);
    for (const i of [0, 2, 3, 5]) {
      const c = (got[i] as { Chunk: Uint8Array }).Chunk;
      expect(c.byteOffset).toBe(0);
      expect(c.byteLength).toBe(c.buffer.byteLength);
      expect(Buffer.compare(Buffer.from(c), Buffer.from((frames[i] as { Chunk: Uint8Array }).Chunk))).toBe(0);
    }
    // Read after everything else: a view into a piece released too early would be empty here.
    const op = got[1] as { Op: string; Data: Uint8Array };
    expect(op.Op).toBe("x");
    expect(Buffer.compare(Buffer.from(op.Data), Buffer.from(pattern(5000, 3)))).toBe(0);
    const two = got[4] as { Chunk: Uint8Array; Extra: number };
    expect(two.Extra).toBe(1);
    expect([...two.Chunk]).toEqual([...pattern(20, 4)]);
    released += handed.filter((p) => p.byteLength === 0).length;
  }
  expect(released).toBeGreaterThan(100);
});
