// Rebuilding the tables from a persist stream: every record is validated (zod)
// and a malformed one throws an error naming the record and field; the trees
// are then built balanced in O(n). Nothing of the live store is touched.
import type { z } from "zod";
import { assertIndex } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import { treeFromSorted, type Tree } from "./ordered_tree.ts";
import type { Tables } from "./state_view.ts";
import {
  aclMetaSchema,
  aclPolicySchema,
  aclTokenSchema,
  TABLES,
  variableSchema,
  zodMessage,
  type AclMeta,
  type AclPolicy,
  type AclToken,
  type TableName,
  type Variable,
  type VariableLock,
} from "./tables.ts";

/** A persist stream that cannot be restored; nothing has changed when it is thrown. */
export class RestoreError extends EdgeError {
  constructor(message: string) {
    super("BAD_REQUEST", `snapshot state is invalid: ${message}`);
    this.name = "RestoreError";
  }
}

type Rows<V> = [string, V][];

function build<V>(rows: Rows<V>, table: string): Tree<V> {
  let sorted = true;
  for (let i = 1; i < rows.length && sorted; i++) sorted = (rows[i - 1] as [string, V])[0] < (rows[i] as [string, V])[0];
  if (!sorted) {
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let i = 1; i < rows.length; i++) {
      const k = (rows[i] as [string, V])[0];
      if ((rows[i - 1] as [string, V])[0] === k) throw new RestoreError(`table ${table} has two records with key "${k}"`);
    }
  }
  return treeFromSorted(rows);
}

function check<S extends z.ZodType>(schema: S, v: unknown, where: string): z.output<S> {
  const r = schema.safeParse(v);
  if (!r.success) throw new RestoreError(`${where}: ${zodMessage(r.error)}`);
  return r.data;
}

/** Collects validated rows table by table, then builds the trees. Synchronous, so callers can feed it whole chunks. */
export class TablesBuilder {
  private readonly vars: Rows<Variable> = [];
  private readonly tokens: Rows<AclToken> = [];
  private readonly policies: Rows<AclPolicy> = [];
  private readonly meta: Rows<AclMeta> = [];
  private n = 0;

  add(rec: unknown): void {
    const n = ++this.n;
    if (typeof rec !== "object" || rec === null || !("t" in rec) || !("v" in rec)) {
      throw new RestoreError(`record ${n} is not a {t, v} record`);
    }
    const table = (rec as { t: unknown }).t;
    if (typeof table !== "string" || !(TABLES as readonly string[]).includes(table)) {
      throw new RestoreError(`record ${n} names unknown table ${JSON.stringify(table)} (known: ${TABLES.join(", ")})`);
    }
    const v = (rec as { v: unknown }).v;
    const where = `record ${n} (table ${table})`;
    switch (table as TableName) {
      case "vars": {
        const row = check(variableSchema, v, where);
        this.vars.push([row.Path, row]);
        break;
      }
      case "acl_tokens": {
        const row = check(aclTokenSchema, v, where);
        this.tokens.push([row.AccessorID, row]);
        break;
      }
      case "acl_policies": {
        const row = check(aclPolicySchema, v, where);
        this.policies.push([row.Name, row]);
        break;
      }
      case "acl_meta": {
        const row = check(aclMetaSchema, v, where);
        this.meta.push([row.Key, row]);
        break;
      }
    }
  }

  finish(restoreIndex: number): Tables {
    assertIndex(restoreIndex, "restore index");
    const varTree = build(this.vars, "vars");
    const locks: Rows<VariableLock> = [];
    for (const [path, v] of this.vars) if (v.Lock !== undefined) locks.push([path, v.Lock]);
    const tokenTree = build(this.tokens, "acl_tokens");
    const secrets: Rows<string> = this.tokens.map(([id, t]) => [t.SecretHash, id]);
    let secretTree: Tree<string>;
    try {
      secretTree = build(secrets, "acl_tokens secrets");
    } catch {
      throw new RestoreError("table acl_tokens has two tokens with the same secret");
    }
    return {
      applied: restoreIndex,
      // Every table index becomes the restore's index, so every index a client sees
      // afterwards is above what it saw before and blocking queries wake.
      indexes: { vars: restoreIndex, acl_tokens: restoreIndex, acl_policies: restoreIndex, acl_meta: restoreIndex },
      vars: varTree,
      locks: treeFromSorted(locks),
      tokens: tokenTree,
      secrets: secretTree,
      policies: build(this.policies, "acl_policies"),
      meta: build(this.meta, "acl_meta"),
    };
  }
}

export async function restoreTables(records: AsyncIterable<unknown> | Iterable<unknown>, restoreIndex: number): Promise<Tables> {
  assertIndex(restoreIndex, "restore index");
  const b = new TablesBuilder();
  for await (const rec of records) b.add(rec);
  return b.finish(restoreIndex);
}
