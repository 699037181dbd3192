// Applying ACL commands (bootstrap once, tokens, policies) to one generation of
// the tables. Secrets arrive already hashed by the leader; only hashes are stored.
import { unreachable } from "../lib/assert.ts";
import type { ErrorCode } from "../lib/errors.ts";
import type { CommandOf } from "./commands.ts";
import { treeDelete, treeGet, treeSet } from "./ordered_tree.ts";
import type { Tables } from "./state_view.ts";
import type { AclMeta, AclPolicy, AclToken, AclTokenRecord, TableName } from "./tables.ts";
import type { Applied } from "./vars_apply.ts";

type AclCommand = CommandOf<"acl.bootstrap" | "acl.token-upsert" | "acl.token-delete" | "acl.policy-upsert" | "acl.policy-delete">;

const refuse = (t: Tables, code: ErrorCode, message: string): Applied => ({ tables: t, result: { ok: false, code, message }, changed: [] });

/** Insert or replace a token, keeping the secret-hash index in step; a string when it is refused. */
function upsertToken(t: Tables, index: number, rec: AclTokenRecord): { tables: Tables; token: AclToken } | string {
  const cur = treeGet(t.tokens, rec.AccessorID);
  const holder = treeGet(t.secrets, rec.SecretHash);
  if (holder !== undefined && holder !== rec.AccessorID) return "a token with this secret already exists";
  if (cur !== undefined && cur.Type !== rec.Type) return `token ${rec.AccessorID} is of type ${cur.Type}; the type cannot change`;
  if (rec.Type === "client") {
    if (rec.Policies.length === 0) return "a client token needs at least one policy";
    for (const p of rec.Policies) {
      if (treeGet(t.policies, p) === undefined) return `policy "${p}" does not exist`;
    }
  }
  const token: AclToken = {
    ...rec,
    CreateTime: cur?.CreateTime ?? rec.CreateTime,
    CreateIndex: cur?.CreateIndex ?? index,
    ModifyIndex: index,
  };
  let secrets = t.secrets;
  if (cur !== undefined && cur.SecretHash !== rec.SecretHash) secrets = treeDelete(secrets, cur.SecretHash);
  secrets = treeSet(secrets, rec.SecretHash, rec.AccessorID);
  return {
    tables: { ...t, tokens: treeSet(t.tokens, rec.AccessorID, token), secrets, indexes: { ...t.indexes, acl_tokens: index } },
    token,
  };
}

export function applyAclCommand(t: Tables, index: number, cmd: AclCommand): Applied {
  switch (cmd.op) {
    case "acl.bootstrap": {
      const done = treeGet(t.meta, "bootstrap");
      if (done !== undefined) return refuse(t, "BAD_REQUEST", `ACL bootstrap already done (at index ${done.BootstrapIndex})`);
      if (cmd.token.Type !== "management") return refuse(t, "BAD_REQUEST", "the bootstrap token must be a management token");
      const up = upsertToken(t, index, cmd.token);
      if (typeof up === "string") return refuse(t, "BAD_REQUEST", up);
      const meta: AclMeta = { Key: "bootstrap", BootstrapIndex: index, BootstrapTime: cmd.now };
      const tables: Tables = {
        ...up.tables,
        meta: treeSet(up.tables.meta, "bootstrap", meta),
        indexes: { ...up.tables.indexes, acl_meta: index },
      };
      const changed: [TableName, string][] = [
        ["acl_tokens", cmd.token.AccessorID],
        ["acl_meta", "bootstrap"],
      ];
      return { tables, result: { ok: true, value: up.token }, changed };
    }
    case "acl.token-upsert": {
      const up = upsertToken(t, index, cmd.token);
      if (typeof up === "string") return refuse(t, "BAD_REQUEST", up);
      return { tables: up.tables, result: { ok: true, value: up.token }, changed: [["acl_tokens", cmd.token.AccessorID]] };
    }
    case "acl.token-delete": {
      const cur = treeGet(t.tokens, cmd.accessorId);
      if (cur === undefined) return refuse(t, "NOT_FOUND", `token ${cmd.accessorId} not found`);
      const tables: Tables = {
        ...t,
        tokens: treeDelete(t.tokens, cmd.accessorId),
        secrets: treeDelete(t.secrets, cur.SecretHash),
        indexes: { ...t.indexes, acl_tokens: index },
      };
      return { tables, result: { ok: true, value: null }, changed: [["acl_tokens", cmd.accessorId]] };
    }
    case "acl.policy-upsert": {
      const cur = treeGet(t.policies, cmd.policy.Name);
      const policy: AclPolicy = { ...cmd.policy, CreateIndex: cur?.CreateIndex ?? index, ModifyIndex: index };
      const tables: Tables = { ...t, policies: treeSet(t.policies, policy.Name, policy), indexes: { ...t.indexes, acl_policies: index } };
      return { tables, result: { ok: true, value: policy }, changed: [["acl_policies", policy.Name]] };
    }
    case "acl.policy-delete": {
      // Tokens naming a deleted policy keep the name; it grants nothing until a policy of that name exists again.
      if (treeGet(t.policies, cmd.name) === undefined) return refuse(t, "NOT_FOUND", `policy "${cmd.name}" not found`);
      const tables: Tables = { ...t, policies: treeDelete(t.policies, cmd.name), indexes: { ...t.indexes, acl_policies: index } };
      return { tables, result: { ok: true, value: null }, changed: [["acl_policies", cmd.name]] };
    }
    default:
      return unreachable(cmd, "ACL command");
  }
}
