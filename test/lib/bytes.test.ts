import { describe, expect, test } from "bun:test";
import { concatBytes } from "../../src/lib/bytes.ts";

describe("concatBytes", () => {
  test("joins parts in order into a new array that owns its bytes", () => {
    const a = Uint8Array.of(1, 2);
    const b = new Uint8Array([9, 3, 4, 9]).subarray(1, 3);
    const out = concatBytes([a, new Uint8Array(0), b]);
    expect([...out]).toEqual([1, 2, 3, 4]);
    expect(out.byteOffset).toBe(0);
    expect(out.buffer.byteLength).toBe(4);
    a[0] = 7;
    expect(out[0]).toBe(1);
  });

  test("one part is copied too; none gives an empty array", () => {
    const a = Uint8Array.of(5);
    const out = concatBytes([a]);
    expect(out).not.toBe(a);
    expect([...out]).toEqual([5]);
    expect(concatBytes([]).length).toBe(0);
  });
});
