import { describe, expect, test } from "bun:test";
import { decodeMultiple, encode } from "../../src/lib/codec.ts";
import { RestoreError } from "../../src/state/restore.ts";
import { StateStore } from "../../src/state/state_store.ts";
import { TABLES, type SnapshotRecord } from "../../src/state/tables.ts";
import { withSeed, withSeedAsync } from "./seeded_random.ts";

const hash = (c: string) => c.repeat(64).slice(0, 64);

/** A store with rows in every table, built from seeded random commands. */
function populated(rand: () => number, n: number): StateStore {
  const s = new StateStore();
  let i = 0;
  s.apply(++i, {
    op: "acl.policy-upsert",
    policy: { Name: "app", Description: "apps", Rules: 'variables { path "app/*" { capabilities = ["read"] } }' },
    now: 10,
  });
  s.apply(++i, {
    op: "acl.bootstrap",
    token: { AccessorID: "root", SecretHash: hash("a"), Name: "Bootstrap", Type: "management", Policies: [], CreateTime: 10 },
    now: 10,
  });
  s.apply(++i, {
    op: "acl.token-upsert",
    token: { AccessorID: "c1", SecretHash: hash("b"), Name: "client", Type: "client", Policies: ["app"], CreateTime: 11 },
    now: 11,
  });
  for (let k = 0; k < n; k++) {
    const path = `app/${Math.floor(rand() * n)}`;
    const r = rand();
    const now = 1000 + i;
    if (r < 0.6) s.apply(++i, { op: "var.put", path, items: { v: String(k), u: "é✓" }, now });
    else if (r < 0.75) s.apply(++i, { op: "var.delete", path, now });
    else if (r < 0.9) s.apply(++i, { op: "var.lock-acquire", path, lockId: `L${k}`, ttlMs: 5000, lockDelayMs: 2000, now });
    else {
      const lock = s.getVar(path)?.Lock;
      if (lock) s.apply(++i, { op: "var.lock-expire", path, lockId: lock.ID, now });
    }
  }
  return s;
}

/** The persist stream as bytes, the way a snapshot carries it, and back. */
function throughCbor(records: Iterable<SnapshotRecord>): unknown[] {
  const parts: Uint8Array[] = [];
  for (const r of records) parts.push(encode(r));
  return decodeMultiple(Buffer.concat(parts));
}

async function* asAsync<T>(xs: Iterable<T>): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

describe("views", () => {
  test("a view is unaffected by later writes, deletes and lock changes", () => {
    withSeed("view isolation", (rand) => {
      const s = populated(rand, 300);
      const v = s.view();
      const before = JSON.stringify([...v.records()]);
      const counts = v.counts();
      const index = v.index;
      const anyPath = v.listVars("", 1).vars[0]?.Path ?? "app/0";
      const got = v.getVar(anyPath);
      for (let k = 0; k < 300; k++) {
        s.apply(s.appliedIndex() + 1, { op: "var.put", path: `app/${k}`, items: { changed: "yes" }, now: 9 });
        if (k % 3 === 0) s.apply(s.appliedIndex() + 1, { op: "var.delete", path: `app/${k}`, now: 9 });
      }
      s.apply(s.appliedIndex() + 1, { op: "acl.token-delete", accessorId: "c1", now: 9 });
      expect(JSON.stringify([...v.records()])).toBe(before);
      expect(v.counts()).toEqual(counts);
      expect(v.index).toBe(index);
      expect(v.getVar(anyPath)).toEqual(got);
      expect(v.tokenByAccessor("c1")).toBeDefined();
      expect(s.tokenByAccessor("c1")).toBeUndefined();
    });
  });

  test("counts match the rows in records()", () => {
    withSeed("counts", (rand) => {
      const v = populated(rand, 200).view();
      const tally = Object.fromEntries(TABLES.map((t) => [t, 0])) as Record<string, number>;
      for (const r of v.records()) tally[r.t] = (tally[r.t] ?? 0) + 1;
      expect(tally).toEqual(v.counts());
      expect(v.counts().acl_meta).toBe(1);
    });
  });
});

describe("persist and restore", () => {
  test("round trip through CBOR gives equal state; every table index becomes the restore index", async () => {
    await withSeedAsync("round trip", async (rand) => {
      const s = populated(rand, 500);
      const v = s.view();
      const restoreIndex = s.appliedIndex() + 1000;
      const r = await StateStore.restore(asAsync(throughCbor(v.records())), restoreIndex);
      expect([...r.view().records()]).toEqual([...v.records()]);
      for (const t of TABLES) expect(r.tableIndex(t)).toBe(restoreIndex);
      expect(r.appliedIndex()).toBe(restoreIndex);
      expect(r.lastIndex()).toBe(restoreIndex);
      expect(r.view().counts()).toEqual(v.counts());
      // Secondary indexes are rebuilt: locks and secret hashes.
      expect(r.heldLocks()).toEqual(s.heldLocks());
      expect(r.tokenBySecretHash(hash("b"))?.AccessorID).toBe("c1");
      expect(r.aclBootstrapped()).toBe(true);
      // Rows keep their own indexes.
      const some = v.listVars("", 5).vars;
      for (const m of some) expect(r.getVar(m.Path)?.ModifyIndex).toBe(m.ModifyIndex);
      // The restored store applies on from the restore index.
      expect(() => r.apply(restoreIndex, { op: "var.put", path: "x", items: {}, now: 1 })).toThrow();
      expect(r.apply(restoreIndex + 1, { op: "var.put", path: "x", items: {}, now: 1 }).ok).toBe(true);
      // A restore builds a new store: the old one is untouched.
      expect(s.getVar("x")).toBeUndefined();
    });
  });

  test("lock-delay survives a restore", async () => {
    const s = new StateStore();
    s.apply(1, { op: "var.lock-acquire", path: "l", lockId: "L", ttlMs: 1000, lockDelayMs: 60_000, now: 0 });
    s.apply(2, { op: "var.lock-expire", path: "l", lockId: "L", now: 1000 });
    const r = await StateStore.restore(throughCbor(s.view().records()), 10);
    expect(r.apply(11, { op: "var.lock-acquire", path: "l", lockId: "M", ttlMs: 1000, lockDelayMs: 0, now: 2000 }).ok).toBe(false);
    expect(r.apply(12, { op: "var.lock-acquire", path: "l", lockId: "M", ttlMs: 1000, lockDelayMs: 0, now: 61_000 }).ok).toBe(true);
  });

  test("an empty stream restores an empty store", async () => {
    const r = await StateStore.restore([], 7);
    expect(r.view().counts()).toEqual({ vars: 0, acl_tokens: 0, acl_policies: 0, acl_meta: 0 });
    expect(r.tableIndex("vars")).toBe(7);
  });

  test("records in any order restore the same", async () => {
    const s = populated(() => 0.3, 50);
    const recs = [...s.view().records()].reverse();
    const r = await StateStore.restore(recs, 99);
    expect([...r.view().records()]).toEqual([...s.view().records()]);
  });

  const goodVar = { Path: "a", Items: { k: "v" }, CreateIndex: 1, ModifyIndex: 2, CreateTime: 0, ModifyTime: 0 };
  const cases: [string, unknown[], RegExp][] = [
    ["not an object", [42], /record 1 is not a \{t, v\} record/],
    ["unknown table", [{ t: "jobs", v: {} }], /record 1 names unknown table "jobs"/],
    ["bad path", [{ t: "vars", v: { ...goodVar, Path: "/a" } }], /record 1 \(table vars\): Path: .*must not start or end/],
    ["missing field", [{ t: "vars", v: { ...goodVar, ModifyIndex: undefined } }], /ModifyIndex/],
    ["extra field", [{ t: "vars", v: { ...goodVar, Evil: 1 } }], /record 1 \(table vars\)/],
    ["non-string item", [{ t: "vars", v: { ...goodVar, Items: { k: 1 } } }], /Items/],
    ["create after modify", [{ t: "vars", v: { ...goodVar, CreateIndex: 5 } }], /CreateIndex must not exceed ModifyIndex/],
    [
      "duplicate key",
      [
        { t: "vars", v: { ...goodVar, Path: "b" } },
        { t: "vars", v: goodVar },
        { t: "vars", v: goodVar },
      ],
      /two records with key "a"/,
    ],
    [
      "bad token hash",
      [
        {
          t: "acl_tokens",
          v: { AccessorID: "x", SecretHash: "s", Name: "", Type: "client", Policies: [], CreateTime: 0, CreateIndex: 1, ModifyIndex: 1 },
        },
      ],
      /record 1 \(table acl_tokens\): SecretHash/,
    ],
    [
      "shared secret",
      [
        {
          t: "acl_tokens",
          v: {
            AccessorID: "x",
            SecretHash: hash("a"),
            Name: "",
            Type: "client",
            Policies: [],
            CreateTime: 0,
            CreateIndex: 1,
            ModifyIndex: 1,
          },
        },
        {
          t: "acl_tokens",
          v: {
            AccessorID: "y",
            SecretHash: hash("a"),
            Name: "",
            Type: "client",
            Policies: [],
            CreateTime: 0,
            CreateIndex: 1,
            ModifyIndex: 1,
          },
        },
      ],
      /same secret/,
    ],
    ["bad meta", [{ t: "acl_meta", v: { Key: "other", BootstrapIndex: 1, BootstrapTime: 0 } }], /record 1 \(table acl_meta\): Key/],
  ];
  for (const [name, records, message] of cases) {
    test(`restore rejects a malformed stream: ${name}`, async () => {
      const err = await StateStore.restore(asAsync(records), 5).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RestoreError);
      expect((err as RestoreError).code).toBe("BAD_REQUEST");
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/^snapshot state is invalid: /);
    });
  }

  test("a failing source stream rejects the restore", async () => {
    async function* broken(): AsyncGenerator<unknown> {
      yield { t: "vars", v: { Path: "a", Items: {}, CreateIndex: 1, ModifyIndex: 1, CreateTime: 0, ModifyTime: 0 } };
      throw new Error("connection cut");
    }
    await expect(StateStore.restore(broken(), 3)).rejects.toThrow("connection cut");
  });
});
