// Proposals waiting for their entry to apply (src/server/proposals.ts): the apply's result or error,
// a leadership change, the deadline swept by one timer, a reused index, shutdown.
import { expect, test } from "bun:test";
import { EdgeError } from "../../src/lib/errors.ts";
import { Proposals } from "../../src/server/proposals.ts";

const code = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => (e instanceof EdgeError ? e.code : String(e)),
  );

test("settles with the apply's result, its error, or UNAVAILABLE when another term's entry applied there", async () => {
  const ps = new Proposals();
  const a = ps.add(1, 2, 30_000);
  const b = ps.add(2, 2, 30_000);
  const c = ps.add(3, 2, 30_000);
  ps.settle(1, 2, { ok: true }, undefined);
  ps.settle(2, 2, undefined, new EdgeError("CONFLICT", "cas"));
  ps.settle(3, 3, { ok: true }, undefined);
  expect(await a).toEqual({ ok: true });
  expect(await code(b)).toBe("CONFLICT");
  expect(await code(c)).toBe("UNAVAILABLE");
  expect(ps.size).toBe(0);
  ps.settle(4, 2, undefined, undefined); // nobody waits there: nothing happens
});

test("each deadline rejects with TIMEOUT and forgets the proposal; the others wait on", async () => {
  const ps = new Proposals();
  const t0 = performance.now();
  const short = ps.add(1, 1, 30);
  const long = ps.add(2, 1, 30_000);
  const shorter = ps.add(3, 1, 5);
  expect(await code(shorter)).toBe("TIMEOUT");
  const e = await short.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(EdgeError);
  expect((e as EdgeError).message).toBe("timed out waiting for index 1 to commit; the outcome is unknown");
  expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
  expect(ps.size).toBe(1);
  ps.settle(1, 1, "late", undefined); // the entry may still apply; nobody waits for it
  ps.settle(2, 1, "v", undefined);
  expect(await long).toBe("v");
});

test("a proposal at an index where an earlier term's still waits fails that one", async () => {
  const ps = new Proposals();
  const old = ps.add(5, 1, 30_000);
  const now = ps.add(5, 3, 30_000);
  expect(await code(old)).toBe("UNAVAILABLE");
  ps.settle(5, 3, "new", undefined);
  expect(await now).toBe("new");
});

test("failAll rejects every waiting proposal and stops the sweep", async () => {
  const ps = new Proposals();
  const a = ps.add(1, 1, 20);
  const b = ps.add(2, 1, 30_000);
  ps.failAll(new EdgeError("UNAVAILABLE", "server is shutting down"));
  expect(await code(a)).toBe("UNAVAILABLE");
  expect(await code(b)).toBe("UNAVAILABLE");
  expect(ps.size).toBe(0);
});
