import { describe, expect, test } from "bun:test";
import { decode, encode } from "../../src/lib/codec.ts";
import { StateStore } from "../../src/state/state_store.ts";
import { withSeed } from "./seeded_random.ts";

const hash = (c: string) => c.repeat(64).slice(0, 64);

/** A random command: mostly valid, some malformed, over few paths so they collide. */
function randomCommand(rand: () => number, i: number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const path = pick(["a", "a/b", "a/c", "b", "zz/top", "/bad", ""]);
  const lockId = pick(["L1", "L2", "L3", "bad id"]);
  const now = i * 100;
  const cas = rand() < 0.3 ? Math.floor(rand() * i) : undefined;
  const items = pick<unknown>([{ k: String(i) }, {}, { k: 1 }, "x", { big: "y".repeat(70_000) }]);
  const c = pick<Record<string, unknown>>([
    { op: "var.put", path, items, now, ...(cas === undefined ? {} : { cas }), ...(rand() < 0.3 ? { lockId } : {}) },
    { op: "var.delete", path, now, ...(cas === undefined ? {} : { cas }), ...(rand() < 0.3 ? { lockId } : {}) },
    { op: "var.lock-acquire", path, lockId, ttlMs: pick([1000, 5000, 10]), lockDelayMs: pick([0, 300, 5000]), now },
    { op: "var.lock-renew", path, lockId, now },
    { op: "var.lock-release", path, lockId, now },
    { op: "var.lock-expire", path, lockId, now },
    { op: "acl.policy-upsert", policy: { Name: pick(["p1", "p2"]), Description: "", Rules: "" }, now },
    { op: "acl.policy-delete", name: pick(["p1", "p2"]), now },
    {
      op: "acl.token-upsert",
      token: {
        AccessorID: pick(["t1", "t2"]),
        SecretHash: hash(pick(["a", "b", "c"])),
        Name: "",
        Type: pick(["client", "management"]),
        Policies: [pick(["p1", "p2"])],
        CreateTime: now,
      },
      now,
    },
    { op: "acl.token-delete", accessorId: pick(["t1", "t2"]), now },
    {
      op: "acl.bootstrap",
      token: { AccessorID: "root", SecretHash: hash("d"), Name: "", Type: "management", Policies: [], CreateTime: now },
      now,
    },
    { op: pick(["var.nope", 7]) },
  ]);
  return c;
}

describe("apply under random commands", () => {
  test("never throws, is deterministic across replicas, and keeps counts, locks and indexes consistent", () => {
    withSeed("apply fuzz", (rand) => {
      const a = new StateStore();
      const b = new StateStore();
      let index = 0;
      for (let i = 1; i <= 3000; i++) {
        index += 1 + Math.floor(rand() * 3);
        const cmd = randomCommand(rand, i);
        const ra = a.apply(index, cmd);
        // The replica sees the command as it travels in a raft entry: CBOR.
        const rb = b.apply(index, decode(encode(cmd)));
        expect(rb).toEqual(ra);
        if (i % 500 === 0) {
          expect([...b.view().records()]).toEqual([...a.view().records()]);
          const v = a.view();
          let vars = 0;
          const locked: string[] = [];
          for (const r of v.records()) {
            if (r.t !== "vars") continue;
            vars++;
            const row = r.v as { Path: string; Lock?: unknown; ModifyIndex: number };
            if (row.Lock) locked.push(row.Path);
            expect(row.ModifyIndex).toBeLessThanOrEqual(a.tableIndex("vars"));
          }
          expect(vars).toBe(v.counts().vars);
          expect(a.heldLocks().map((l) => l.path)).toEqual(locked);
          expect(a.lastIndex()).toBeLessThanOrEqual(a.appliedIndex());
        }
      }
    });
  });
});
