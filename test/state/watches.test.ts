import { describe, expect, test } from "bun:test";
import { StateStore } from "../../src/state/state_store.ts";

/** Wait for `p` to settle, or fail after `ms` (a deadline, not a sleep). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = await Promise.race([p.then(() => true), timeout]);
  clearTimeout(timer);
  return done;
}

/** True when `p` has not settled after the microtask queue drains. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(() => (settled = true));
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return !settled;
}

const put = (path: string) => ({ op: "var.put", path, items: { k: "v" }, now: 1 });

describe("watches", () => {
  test("a key watch wakes on a change to that key only", async () => {
    const s = new StateStore();
    const w = s.watch("vars", "a");
    s.apply(1, put("b"));
    expect(await pending(w)).toBe(true);
    s.apply(2, put("a"));
    expect(await settlesWithin(w, 1000)).toBe(true);
    expect(s.watchStats()).toEqual({ keys: 0, waiters: 0 });
  });

  test("a table watch wakes on any row; other tables do not wake it", async () => {
    const s = new StateStore();
    const w = s.watch("vars");
    s.apply(1, { op: "acl.policy-upsert", policy: { Name: "p", Description: "", Rules: "" }, now: 1 });
    expect(await pending(w)).toBe(true);
    s.apply(2, put("z"));
    expect(await settlesWithin(w, 1000)).toBe(true);
  });

  test("refused commands and renewals do not wake watchers", async () => {
    const s = new StateStore();
    s.apply(1, put("a"));
    s.apply(2, { op: "var.lock-acquire", path: "l", lockId: "L", ttlMs: 1000, lockDelayMs: 0, now: 1 });
    const w = s.watch("vars");
    s.apply(3, { ...put("a"), cas: 0 });
    s.apply(4, { op: "var.lock-renew", path: "l", lockId: "L", now: 2 });
    expect(await pending(w)).toBe(true);
    s.apply(5, { op: "var.delete", path: "a", now: 3 });
    expect(await settlesWithin(w, 1000)).toBe(true);
  });

  test("waiters on one key share one entry", () => {
    const s = new StateStore();
    const ws = Array.from({ length: 100 }, () => s.watch("vars", "hot"));
    expect(s.watchStats()).toEqual({ keys: 1, waiters: 100 });
    s.apply(1, put("hot"));
    expect(s.watchStats()).toEqual({ keys: 0, waiters: 0 });
    return Promise.all(ws);
  });

  test("callers that give up leave nothing behind", async () => {
    const s = new StateStore();
    const controllers: AbortController[] = [];
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 10_000; i++) {
      const c = new AbortController();
      controllers.push(c);
      waits.push(s.watch("vars", `k${i % 50}`, c.signal));
    }
    expect(s.watchStats()).toEqual({ keys: 50, waiters: 10_000 });
    for (const c of controllers) c.abort();
    expect(await settlesWithin(Promise.all(waits), 1000)).toBe(true);
    expect(s.watchStats()).toEqual({ keys: 0, waiters: 0 });
    // An already-aborted signal resolves at once and registers nothing.
    await s.watch("vars", "x", AbortSignal.abort());
    expect(s.watchStats()).toEqual({ keys: 0, waiters: 0 });
  });

  test("abandon wakes everyone and later watches resolve at once", async () => {
    const s = new StateStore();
    const a = s.watch("vars", "a");
    const b = s.watch("acl_tokens");
    s.abandon();
    expect(await settlesWithin(Promise.all([a, b]), 1000)).toBe(true);
    expect(await settlesWithin(s.watch("vars", "c"), 1000)).toBe(true);
    expect(s.watchStats()).toEqual({ keys: 0, waiters: 0 });
    expect(() => s.apply(1, put("a"))).toThrow(/abandoned/);
  });
});
