import { describe, expect, test } from "bun:test";
import type { ApplyResult } from "../../src/state/commands.ts";
import { StateStore } from "../../src/state/state_store.ts";
import type { Variable } from "../../src/state/tables.ts";

/** Applies commands at increasing raft indexes, as the server would. */
class Harness {
  readonly s = new StateStore();
  index = 0;
  apply(cmd: Record<string, unknown>): ApplyResult {
    this.index += 1;
    return this.s.apply(this.index, cmd);
  }
  ok(cmd: Record<string, unknown>): Variable {
    const r = this.apply(cmd);
    if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
    return r.value as Variable;
  }
  refused(cmd: Record<string, unknown>, code = "CONFLICT"): Extract<ApplyResult, { ok: false }> {
    const r = this.apply(cmd);
    if (r.ok) throw new Error(`expected ${code}, got ok`);
    expect(r.code).toBe(code as never);
    return r;
  }
}

const put = (path: string, items: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  op: "var.put",
  path,
  items,
  now: 1000,
  ...extra,
});

describe("variables: put, delete, CAS", () => {
  test("put creates, then updates keeping CreateIndex/CreateTime", () => {
    const h = new Harness();
    const a = h.ok(put("app/a", { k: "1" }, { now: 10 }));
    expect(a).toEqual({ Path: "app/a", Items: { k: "1" }, CreateIndex: 1, ModifyIndex: 1, CreateTime: 10, ModifyTime: 10 });
    const b = h.ok(put("app/a", { k: "2" }, { now: 20 }));
    expect(b).toEqual({ Path: "app/a", Items: { k: "2" }, CreateIndex: 1, ModifyIndex: 2, CreateTime: 10, ModifyTime: 20 });
    expect(h.s.getVar("app/a")).toEqual(b);
    expect(h.s.tableIndex("vars")).toBe(2);
    expect(h.s.lastIndex()).toBe(2);
  });

  test("cas=N succeeds only at ModifyIndex N; conflict carries the current variable", () => {
    const h = new Harness();
    const a = h.ok(put("x", { v: "1" }));
    const bad = h.refused(put("x", { v: "2" }, { cas: a.ModifyIndex + 7 }));
    expect(bad.detail).toEqual(a);
    expect(h.s.getVar("x")).toEqual(a);
    const b = h.ok(put("x", { v: "2" }, { cas: a.ModifyIndex }));
    expect(b.Items).toEqual({ v: "2" });
    // The old index is now stale.
    h.refused(put("x", { v: "3" }, { cas: a.ModifyIndex }));
    // cas on an absent variable (other than 0) conflicts.
    const absent = h.refused(put("nope", { v: "1" }, { cas: 3 }));
    expect(absent.detail).toBeUndefined();
  });

  test("cas=0 is create-only", () => {
    const h = new Harness();
    const a = h.ok(put("once", { v: "1" }, { cas: 0 }));
    const again = h.refused(put("once", { v: "2" }, { cas: 0 }));
    expect(again.detail).toEqual(a);
    expect(h.s.getVar("once")?.Items).toEqual({ v: "1" });
  });

  test("delete, with and without CAS; deleting an absent variable succeeds", () => {
    const h = new Harness();
    const a = h.ok(put("d", { v: "1" }));
    h.refused({ op: "var.delete", path: "d", cas: a.ModifyIndex + 1, now: 1 });
    h.refused({ op: "var.delete", path: "d", cas: 0, now: 1 });
    expect(h.s.getVar("d")).toBeDefined();
    expect(h.apply({ op: "var.delete", path: "d", cas: a.ModifyIndex, now: 1 })).toEqual({ ok: true, value: null });
    expect(h.s.getVar("d")).toBeUndefined();
    expect(h.s.tableIndex("vars")).toBe(h.index);
    const before = h.s.tableIndex("vars");
    expect(h.apply({ op: "var.delete", path: "d", now: 1 }).ok).toBe(true);
    expect(h.s.tableIndex("vars")).toBe(before);
    h.refused({ op: "var.delete", path: "d", cas: 5, now: 1 });
  });

  test("a refused command changes nothing but the applied index", () => {
    const h = new Harness();
    h.ok(put("x", { v: "1" }));
    const view = h.s.view();
    h.refused(put("x", { v: "2" }, { cas: 0 }));
    expect(h.s.tableIndex("vars")).toBe(1);
    expect(h.s.appliedIndex()).toBe(2);
    expect([...h.s.view().records()]).toEqual([...view.records()]);
  });
});

describe("variables: validation", () => {
  const bad = ["", "/a", "a/", "a//b", "a b", "a.b", "é", "x".repeat(129)];
  for (const p of bad) {
    test(`path ${JSON.stringify(p.length > 20 ? `${p.slice(0, 10)}…(${p.length})` : p)} is refused`, () => {
      const h = new Harness();
      const r = h.refused(put(p, { k: "v" }), "BAD_REQUEST");
      expect(r.message).toMatch(/path/);
      expect(h.s.view().counts().vars).toBe(0);
    });
  }

  test("valid paths of every allowed character and 128 chars are accepted", () => {
    const h = new Harness();
    h.ok(put("aZ09-_~/x", { k: "v" }));
    h.ok(put("y".repeat(128), { k: "v" }));
  });

  test("items over 64 KiB encoded are refused; just under is accepted", () => {
    const h = new Harness();
    const big = h.refused(put("big", { k: "x".repeat(64 * 1024) }), "BAD_REQUEST");
    expect(big.message).toMatch(/64|65536|limit/);
    h.ok(put("fits", { k: "x".repeat(64 * 1024 - 100) }));
  });

  test("non-string items, unknown fields, bad commands are results, not crashes", () => {
    const h = new Harness();
    h.refused({ op: "var.put", path: "a", items: { k: 1 }, now: 1 }, "BAD_REQUEST");
    h.refused({ op: "var.put", path: "a", items: {}, now: 1, extra: true }, "BAD_REQUEST");
    h.refused({ op: "var.nope", path: "a", now: 1 }, "BAD_REQUEST");
    h.refused({ op: "var.put", path: "a", items: {}, now: -1 }, "BAD_REQUEST");
    for (const junk of [null, undefined, 42, "x", [], {}]) {
      h.index++;
      expect(h.s.apply(h.index, junk).ok).toBe(false);
    }
    expect(h.s.view().counts().vars).toBe(0);
  });

  test("apply indexes must increase", () => {
    const s = new StateStore();
    s.apply(5, put("a", {}));
    expect(() => s.apply(5, put("a", {}))).toThrow(/above the last applied/);
    expect(() => s.apply(3, put("a", {}))).toThrow(/above the last applied/);
    expect(s.apply(9, put("a", {})).ok).toBe(true);
  });
});

describe("variables: prefix listing and pagination", () => {
  test("sorted by path, metadata only, paginated with next_token", () => {
    const h = new Harness();
    const paths = ["b/2", "a/1", "b/10", "b/1", "c", "b", "ba"];
    for (const p of paths) h.ok(put(p, { secret: p }));
    const all = h.s.listVars("", 100);
    expect(all.vars.map((v) => v.Path)).toEqual([...paths].sort());
    expect(all.nextToken).toBeUndefined();
    expect(all.vars.every((v) => !("Items" in v))).toBe(true);

    const prefix = "b/";
    const got: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = h.s.listVars(prefix, 1, token);
      got.push(...page.vars.map((v) => v.Path));
      token = page.nextToken;
      pages++;
      expect(pages).toBeLessThan(10);
    } while (token !== undefined);
    expect(got).toEqual(["b/1", "b/10", "b/2"]);
    expect(pages).toBe(3);

    const p2 = h.s.listVars("b", 2);
    expect(p2.vars.map((v) => v.Path)).toEqual(["b", "b/1"]);
    expect(p2.nextToken).toBe("b/10");
    expect(h.s.listVars("zz", 5)).toEqual({ vars: [] });
  });

  test("per_page bounds are enforced", () => {
    const s = new StateStore();
    expect(() => s.listVars("", 0)).toThrow(/per_page/);
    expect(() => s.listVars("", 10_001)).toThrow(/per_page/);
    expect(() => s.listVars("", 1.5)).toThrow(/per_page/);
  });
});

describe("locks", () => {
  const acquire = (path: string, lockId: string, extra: Record<string, unknown> = {}) => ({
    op: "var.lock-acquire",
    path,
    lockId,
    ttlMs: 15_000,
    lockDelayMs: 10_000,
    now: 1000,
    ...extra,
  });

  test("acquire on an absent variable creates it; a second acquire conflicts", () => {
    const h = new Harness();
    const v = h.ok(acquire("l", "lock-1", { items: { owner: "a" } }));
    expect(v.Lock).toEqual({ ID: "lock-1", TTL: 15_000, LockDelay: 10_000 });
    expect(v.Items).toEqual({ owner: "a" });
    expect(h.s.heldLocks()).toEqual([{ path: "l", lockId: "lock-1", ttlMs: 15_000 }]);
    const r = h.refused(acquire("l", "lock-2"));
    expect(r.message).toMatch(/already locked/);
    expect(h.s.getVar("l")?.Lock?.ID).toBe("lock-1");
  });

  test("acquire without items keeps the existing items; with no variable makes empty items", () => {
    const h = new Harness();
    h.ok(put("p", { a: "1" }));
    expect(h.ok(acquire("p", "L")).Items).toEqual({ a: "1" });
    expect(h.ok(acquire("q", "M")).Items).toEqual({});
  });

  test("a locked variable changes only with its lock id", () => {
    const h = new Harness();
    h.ok(acquire("l", "L1"));
    expect(h.refused(put("l", { a: "x" })).message).toMatch(/locked/);
    h.refused(put("l", { a: "x" }, { lockId: "OTHER" }));
    h.refused({ op: "var.delete", path: "l", now: 1 });
    h.refused({ op: "var.delete", path: "l", lockId: "OTHER", now: 1 });
    const v = h.ok(put("l", { a: "y" }, { lockId: "L1" }));
    expect(v.Items).toEqual({ a: "y" });
    expect(v.Lock?.ID).toBe("L1");
    // A lock id on an unlocked variable is a stale lock: refused.
    h.ok(put("free", { a: "1" }));
    h.refused(put("free", { a: "2" }, { lockId: "L1" }));
    // Delete with the lock id removes the variable and its lock.
    expect(h.apply({ op: "var.delete", path: "l", lockId: "L1", now: 1 }).ok).toBe(true);
    expect(h.s.getVar("l")).toBeUndefined();
    expect(h.s.heldLocks()).toEqual([]);
  });

  test("renew needs the holder's id and changes nothing", () => {
    const h = new Harness();
    const v = h.ok(acquire("l", "L1"));
    const r = h.apply({ op: "var.lock-renew", path: "l", lockId: "L1", now: 2000 });
    expect(r).toEqual({ ok: true, value: v });
    expect(h.s.tableIndex("vars")).toBe(1);
    h.refused({ op: "var.lock-renew", path: "l", lockId: "L2", now: 2000 });
    h.refused({ op: "var.lock-renew", path: "nothing", lockId: "L1", now: 2000 });
  });

  test("release frees the lock at once (no lock-delay); a second release conflicts", () => {
    const h = new Harness();
    h.ok(acquire("l", "L1", { items: { a: "1" } }));
    h.refused({ op: "var.lock-release", path: "l", lockId: "L2", now: 2000 });
    const v = h.ok({ op: "var.lock-release", path: "l", lockId: "L1", now: 2000 });
    expect(v.Lock).toBeUndefined();
    expect(v.Items).toEqual({ a: "1" });
    expect(v.ModifyIndex).toBe(h.index);
    h.refused({ op: "var.lock-release", path: "l", lockId: "L1", now: 2000 });
    expect(h.s.heldLocks()).toEqual([]);
    h.ok(acquire("l", "L2", { now: 2001 }));
  });

  test("expire frees the lock and starts lock-delay measured with cmd.now", () => {
    const h = new Harness();
    h.ok(acquire("l", "L1", { lockDelayMs: 10_000 }));
    const v = h.ok({ op: "var.lock-expire", path: "l", lockId: "L1", now: 50_000 });
    expect(v.Lock).toBeUndefined();
    expect(h.s.heldLocks()).toEqual([]);
    // Within the delay nobody may acquire, nor may a stale expiry do anything.
    expect(h.refused(acquire("l", "L2", { now: 59_999 })).message).toMatch(/lock-delay/);
    h.refused({ op: "var.lock-expire", path: "l", lockId: "L1", now: 50_001 });
    // A plain write during the delay is allowed and keeps the delay.
    h.ok(put("l", { a: "b" }, { now: 55_000 }));
    h.refused(acquire("l", "L2", { now: 59_000 }));
    // After it, acquire works.
    const w = h.ok(acquire("l", "L3", { now: 60_000 }));
    expect(w.Lock?.ID).toBe("L3");
    expect(w.LockDelayUntil).toBeUndefined();
  });

  test("an expiry for an older lock id does not touch a newer lock", () => {
    const h = new Harness();
    h.ok(acquire("l", "L1", { lockDelayMs: 0 }));
    h.ok({ op: "var.lock-release", path: "l", lockId: "L1", now: 2 });
    h.ok(acquire("l", "L2"));
    h.refused({ op: "var.lock-expire", path: "l", lockId: "L1", now: 3 });
    expect(h.s.getVar("l")?.Lock?.ID).toBe("L2");
  });

  test("TTL and lock-delay bounds", () => {
    const h = new Harness();
    h.refused(acquire("l", "L", { ttlMs: 999 }), "BAD_REQUEST");
    h.refused(acquire("l", "L", { ttlMs: 24 * 3_600_000 + 1 }), "BAD_REQUEST");
    h.refused(acquire("l", "L", { lockDelayMs: -1 }), "BAD_REQUEST");
    h.refused(acquire("l", "L", { lockDelayMs: 3_600_001 }), "BAD_REQUEST");
    h.refused(acquire("l", "bad id!"), "BAD_REQUEST");
    h.ok(acquire("l", "L", { ttlMs: 1000, lockDelayMs: 0 }));
  });

  test("heldLocks lists every lock sorted by path", () => {
    const h = new Harness();
    h.ok(acquire("z", "Z"));
    h.ok(acquire("a", "A", { ttlMs: 5000 }));
    h.ok(put("m", {}));
    expect(h.s.heldLocks()).toEqual([
      { path: "a", lockId: "A", ttlMs: 5000 },
      { path: "z", lockId: "Z", ttlMs: 15_000 },
    ]);
  });
});

test('an item key "__proto__" is refused rather than silently dropped', () => {
  const s = new StateStore();
  const r = s.apply(1, { op: "var.put", path: "p", items: JSON.parse('{"__proto__":"x","a":"b"}'), now: 1 });
  expect(r).toMatchObject({ ok: false, code: "BAD_REQUEST" });
  expect(s.getVar("p")).toBeUndefined();
});
