// Hand a transient buffer's memory back to the allocator at once instead of at the next garbage
// collection. A large buffer dropped to the GC leaves its pages to be unmapped and faulted in again for
// the next one; a released one is reused while still mapped. Where page faults are dear (on virtual
// machines, tens of times a bare-metal fault) a stream of 256 KiB blocks spends more time faulting than
// working. See test/bench/RESULTS.md "release".
import { assert } from "./assert.ts";

/** Buffers smaller than this are left to the GC: their allocations are pooled and cheap. */
export const RELEASE_MIN_BYTES = 16 * 1024;

/**
 * Release `bytes`' memory now if `bytes` is the whole of its own ArrayBuffer. The caller promises that
 * nothing else holds a view of it (no pending write, no decoded value pointing into it): afterwards every
 * view of that buffer has length 0. A view of part of a larger buffer is left alone.
 */
export function release(bytes: Uint8Array): void {
  const ab = bytes.buffer;
  if (!(ab instanceof ArrayBuffer) || ab.detached) return;
  if (bytes.byteOffset !== 0 || bytes.byteLength !== ab.byteLength || ab.byteLength < RELEASE_MIN_BYTES) return;
  ab.transfer(0);
  assert(bytes.byteLength === 0, "a released buffer is empty");
}
