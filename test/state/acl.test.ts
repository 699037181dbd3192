import { describe, expect, test } from "bun:test";
import { StateStore } from "../../src/state/state_store.ts";
import type { AclToken } from "../../src/state/tables.ts";

const hash = (c: string) => c.repeat(64).slice(0, 64);
const token = (id: string, h: string, extra: Record<string, unknown> = {}) => ({
  AccessorID: id,
  SecretHash: hash(h),
  Name: `tok ${id}`,
  Type: "management",
  Policies: [],
  CreateTime: 100,
  ...extra,
});

describe("ACL tables", () => {
  test("bootstrap succeeds once; the second is BAD_REQUEST and changes nothing", () => {
    const s = new StateStore();
    expect(s.aclBootstrapped()).toBe(false);
    const r = s.apply(1, { op: "acl.bootstrap", token: token("root", "a"), now: 5 });
    expect(r.ok).toBe(true);
    expect((r as { value: AclToken }).value).toMatchObject({ AccessorID: "root", CreateIndex: 1, ModifyIndex: 1, Type: "management" });
    expect(s.aclBootstrapped()).toBe(true);
    expect(s.tableIndex("acl_meta")).toBe(1);
    const again = s.apply(2, { op: "acl.bootstrap", token: token("root2", "b"), now: 6 });
    expect(again).toMatchObject({ ok: false, code: "BAD_REQUEST" });
    expect((again as { message: string }).message).toMatch(/already/);
    expect(s.tokenByAccessor("root2")).toBeUndefined();
    expect(s.listTokens().length).toBe(1);
    expect(s.tableIndex("acl_tokens")).toBe(1);
  });

  test("bootstrap needs a management token", () => {
    const s = new StateStore();
    expect(s.apply(1, { op: "acl.bootstrap", token: token("c", "a", { Type: "client", Policies: ["p"] }), now: 1 }).ok).toBe(false);
    expect(s.aclBootstrapped()).toBe(false);
  });

  test("tokens: lookup by secret hash, policies must exist, secrets unique, type fixed", () => {
    const s = new StateStore();
    let i = 0;
    const apply = (c: Record<string, unknown>) => s.apply(++i, c);
    expect(apply({ op: "acl.token-upsert", token: token("c1", "c", { Type: "client", Policies: ["app"] }), now: 1 })).toMatchObject({
      ok: false,
      code: "BAD_REQUEST",
    });
    expect(
      apply({
        op: "acl.policy-upsert",
        policy: { Name: "app", Description: "d", Rules: 'variables { path "app/*" { capabilities = ["read"] } }' },
        now: 1,
      }).ok,
    ).toBe(true);
    expect(s.policy("app")?.CreateIndex).toBe(i);
    expect(apply({ op: "acl.token-upsert", token: token("c1", "c", { Type: "client", Policies: ["app"] }), now: 1 }).ok).toBe(true);
    expect(s.tokenBySecretHash(hash("c"))?.AccessorID).toBe("c1");
    expect(s.tokenBySecretHash(hash("d"))).toBeUndefined();
    // Another token with the same secret is refused.
    expect(apply({ op: "acl.token-upsert", token: token("c2", "c"), now: 1 })).toMatchObject({ ok: false, code: "BAD_REQUEST" });
    // Type cannot change.
    expect(apply({ op: "acl.token-upsert", token: token("c1", "c"), now: 1 })).toMatchObject({ ok: false, code: "BAD_REQUEST" });
    // Update keeps CreateIndex; a changed secret moves the hash index.
    const created = s.tokenByAccessor("c1")!.CreateIndex;
    expect(
      apply({ op: "acl.token-upsert", token: token("c1", "e", { Type: "client", Policies: ["app"], Name: "renamed" }), now: 1 }).ok,
    ).toBe(true);
    expect(s.tokenByAccessor("c1")).toMatchObject({ Name: "renamed", CreateIndex: created, ModifyIndex: i });
    expect(s.tokenBySecretHash(hash("c"))).toBeUndefined();
    expect(s.tokenBySecretHash(hash("e"))?.AccessorID).toBe("c1");
    // Delete.
    expect(apply({ op: "acl.token-delete", accessorId: "c1", now: 1 }).ok).toBe(true);
    expect(s.tokenBySecretHash(hash("e"))).toBeUndefined();
    expect(apply({ op: "acl.token-delete", accessorId: "c1", now: 1 })).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(apply({ op: "acl.policy-delete", name: "app", now: 1 }).ok).toBe(true);
    expect(s.listPolicies()).toEqual([]);
    expect(apply({ op: "acl.policy-delete", name: "app", now: 1 })).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(s.tableIndex("acl_policies")).toBe(i - 1);
  });

  test("malformed tokens are refused", () => {
    const s = new StateStore();
    expect(s.apply(1, { op: "acl.token-upsert", token: token("x", "a", { SecretHash: "plain-secret" }), now: 1 })).toMatchObject({
      ok: false,
      code: "BAD_REQUEST",
    });
    expect(s.apply(2, { op: "acl.token-upsert", token: token("x", "a", { Type: "root" }), now: 1 })).toMatchObject({
      ok: false,
      code: "BAD_REQUEST",
    });
    expect(s.listTokens()).toEqual([]);
  });
});
