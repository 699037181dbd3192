// The one deadline helper: a bounded wait settles like its promise, or times out with the caller's error,
// or is cancelled by a signal; settlesWithin and pollUntil answer whether the wait ended in time;
// deadlineTimer acts on expiry unless cancelled.
import { describe, expect, test } from "bun:test";
import { deadlineTimer, pollUntil, settlesWithin, withDeadline } from "../../src/lib/deadline.ts";
import { EdgeError, hasCode } from "../../src/lib/errors.ts";

const never = () => new Promise<never>(() => {});

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

describe("withDeadline", () => {
  test("settles like its promise when that comes first", async () => {
    expect(await withDeadline(Promise.resolve(7), 1_000, "x")).toBe(7);
    const boom = new EdgeError("CONFLICT", "boom");
    expect(await caught(withDeadline(Promise.reject(boom), 1_000, "x"))).toBe(boom);
  });

  test("times out with a TIMEOUT saying what, or with the caller's own error", async () => {
    const e = await caught(withDeadline(never(), 5, "waiting for godot"));
    expect(hasCode(e, "TIMEOUT")).toBe(true);
    expect((e as Error).message).toBe("waiting for godot");
    const own = await caught(withDeadline(never(), 5, () => new EdgeError("ABORTED", "no header")));
    expect([hasCode(own, "ABORTED"), (own as Error).message]).toEqual([true, "no header"]);
  });

  test("a signal cancels the wait, at once when it has already aborted", async () => {
    const ac = new AbortController();
    const p = withDeadline(never(), 60_000, "x", { signal: ac.signal, cancelled: () => new EdgeError("CANCELLED", "caller gave up") });
    ac.abort();
    const e = await caught(p);
    expect([hasCode(e, "CANCELLED"), (e as Error).message]).toEqual([true, "caller gave up"]);
    const again = await caught(withDeadline(never(), 60_000, "x", { signal: ac.signal }));
    expect(hasCode(again, "CANCELLED")).toBe(true);
  });
});

describe("deadlineTimer", () => {
  test("runs its action once when the time is up, never once cancelled", async () => {
    let fired = 0;
    const t0 = performance.now();
    deadlineTimer(10, () => fired++);
    const cancelled = deadlineTimer(10, () => fired++);
    cancelled.cancel();
    expect(await pollUntil(() => fired > 0, 5_000, 1)).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(9);
    // The cancelled one had the same deadline; a later expiry gives it time to (wrongly) run.
    let later = false;
    deadlineTimer(30, () => {
      later = true;
    });
    expect(await pollUntil(() => later, 5_000, 1)).toBe(true);
    expect(fired).toBe(1);
  });
});

describe("settlesWithin", () => {
  test("true when the promise settles in time, false when it does not, its rejection passes on", async () => {
    expect(await settlesWithin(Promise.resolve(), 1_000)).toBe(true);
    expect(await settlesWithin(undefined, 1_000)).toBe(true);
    expect(await settlesWithin(never(), 5)).toBe(false);
    const own = new EdgeError("TIMEOUT", "its own timeout");
    expect(await caught(settlesWithin(Promise.reject(own), 1_000))).toBe(own);
  });
});

describe("pollUntil", () => {
  test("true once the condition holds, false when the time runs out first", async () => {
    let n = 0;
    expect(await pollUntil(() => ++n >= 3, 5_000, 1)).toBe(true);
    expect(n).toBe(3);
    const t0 = performance.now();
    expect(await pollUntil(() => false, 20, 5)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
  });
});
