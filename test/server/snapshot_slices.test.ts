// A raft snapshot's encoding hands the event loop back every slice (inSlices): what is ready meanwhile
// (a request, an fsync completion) runs during a long encoding, not after it; and every record
// comes out once, in order.
import { expect, test } from "bun:test";
import { inSlices } from "../../src/server/raft_snapshots.ts";

/** Records that each take `ms` of CPU to produce, as encoding a large state does. */
function* slow(n: number, ms: number): Generator<number> {
  for (let i = 0; i < n; i++) {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // busy: the CPU work of one record
    }
    yield i;
  }
}

test("every record, in order", async () => {
  const out: number[] = [];
  for await (const r of inSlices(
    Array.from({ length: 1000 }, (_, i) => i),
    0.5,
  ))
    out.push(r);
  expect(out).toEqual(Array.from({ length: 1000 }, (_, i) => i));
});

test("work that becomes ready runs within a slice or so, not after the whole encoding", async () => {
  // 256 records of 0.2 ms: about 50 ms of encoding; the clock is looked at every 64 records (13 ms).
  const seen: number[] = [];
  let at = -1;
  const started = performance.now();
  setImmediate(() => {
    at = seen.length;
  });
  for await (const r of inSlices(slow(256, 0.2), 0.5)) seen.push(r);
  expect(seen.length).toBe(256);
  expect(performance.now() - started).toBeGreaterThan(40);
  // Ran after the first check of the clock (64 records), long before the last record.
  expect(at).toBeGreaterThan(0);
  expect(at).toBeLessThanOrEqual(64);
});
