import { describe, expect, test } from "bun:test";
import { release, RELEASE_MIN_BYTES } from "../../src/lib/release.ts";

describe("release", () => {
  test("a buffer that is the whole of its ArrayBuffer is emptied at once", () => {
    const b = new Uint8Array(RELEASE_MIN_BYTES).fill(7);
    const alias = new Uint8Array(b.buffer);
    release(b);
    expect(b.byteLength).toBe(0);
    expect(alias.byteLength).toBe(0);
    expect(b.buffer.detached).toBe(true);
    release(b); // twice is nothing
    expect(b.byteLength).toBe(0);
  });

  test("a view of part of a buffer, and a small buffer, are left alone", () => {
    const big = new Uint8Array(4 * RELEASE_MIN_BYTES).fill(1);
    release(big.subarray(0, RELEASE_MIN_BYTES));
    release(big.subarray(1));
    expect(big.byteLength).toBe(4 * RELEASE_MIN_BYTES);
    expect(big[5]).toBe(1);
    const small = new Uint8Array(RELEASE_MIN_BYTES - 1);
    release(small);
    expect(small.byteLength).toBe(RELEASE_MIN_BYTES - 1);
    // Node's pooled Buffers are views of a shared slab: never the whole of it.
    const pooled = Buffer.allocUnsafe(100);
    release(pooled);
    expect(pooled.byteLength).toBe(100);
  });

  test("a released buffer's memory is reused for the next one, without new page faults", () => {
    // Correctness is above; this shows the point of it with a margin that no GC timing can close:
    // 64 MiB in 256 KiB buffers, fresh memory each (16k pages) against one buffer's worth.
    const run = (free: boolean) => {
      const before = process.resourceUsage().minorPageFault;
      for (let i = 0; i < 256; i++) {
        const b = new Uint8Array(256 * 1024);
        b.fill(i);
        if (free) release(b);
      }
      return process.resourceUsage().minorPageFault - before;
    };
    run(true);
    expect(run(true)).toBeLessThan(2000);
  });
});
