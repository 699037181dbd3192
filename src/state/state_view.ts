// Reads over one immutable generation of the tables. Taking a view is O(1): it
// holds the roots of persistent trees, which later writes never modify.
import { badRequest } from "../lib/errors.ts";
import { treeEntries, treeGet, treeSize, type Tree } from "./ordered_tree.ts";
import {
  LIMITS,
  type AclMeta,
  type AclPolicy,
  type AclToken,
  type SnapshotRecord,
  type TableName,
  type Variable,
  type VariableLock,
  type VariableMeta,
} from "./tables.ts";

/** One generation of the state. Never mutated: apply builds a new one. */
export interface Tables {
  /** Raft index of the last command applied (whether or not it changed anything). */
  readonly applied: number;
  /** Raft index of the last change to each table (after a restore: the restore's index). */
  readonly indexes: Readonly<Record<TableName, number>>;
  readonly vars: Tree<Variable>;
  /** Secondary index: path -> lock, for the variables that are locked now. */
  readonly locks: Tree<VariableLock>;
  readonly tokens: Tree<AclToken>;
  /** Secondary index: SecretHash -> AccessorID. */
  readonly secrets: Tree<string>;
  readonly policies: Tree<AclPolicy>;
  readonly meta: Tree<AclMeta>;
}

export const EMPTY_TABLES: Tables = {
  applied: 0,
  indexes: { vars: 0, acl_tokens: 0, acl_policies: 0, acl_meta: 0 },
  vars: null,
  locks: null,
  tokens: null,
  secrets: null,
  policies: null,
  meta: null,
};

export interface HeldLock {
  path: string;
  lockId: string;
  ttlMs: number;
}

export function toMeta(v: Variable): VariableMeta {
  const { Items: _items, ...meta } = v;
  return meta;
}

export class StateView {
  constructor(private readonly t: Tables) {}

  /** The raft index this view reflects (the last applied command). */
  get index(): number {
    return this.t.applied;
  }

  /** The highest table index: what a blocking query on "anything" compares against. */
  lastIndex(): number {
    const i = this.t.indexes;
    return Math.max(i.vars, i.acl_tokens, i.acl_policies, i.acl_meta);
  }

  tableIndex(table: TableName): number {
    return this.t.indexes[table];
  }

  counts(): Record<TableName, number> {
    return {
      vars: treeSize(this.t.vars),
      acl_tokens: treeSize(this.t.tokens),
      acl_policies: treeSize(this.t.policies),
      acl_meta: treeSize(this.t.meta),
    };
  }

  getVar(path: string): Variable | undefined {
    return treeGet(this.t.vars, path);
  }

  /**
   * Variables whose path starts with `prefix`, sorted by path, without Items.
   * `nextToken` is the path to resume at (inclusive), as returned by the previous page.
   */
  listVars(prefix: string, perPage: number, nextToken?: string): { vars: VariableMeta[]; nextToken?: string } {
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > LIMITS.listPerPageMax) {
      throw badRequest(`per_page must be an integer from 1 to ${LIMITS.listPerPageMax}, got ${perPage}`);
    }
    if (prefix.length > LIMITS.pathMaxChars) throw badRequest(`prefix is longer than ${LIMITS.pathMaxChars} characters`);
    if (nextToken !== undefined && nextToken.length > LIMITS.pathMaxChars)
      throw badRequest(`next_token is longer than ${LIMITS.pathMaxChars} characters`);
    const from = nextToken !== undefined && nextToken > prefix ? nextToken : prefix;
    const vars: VariableMeta[] = [];
    for (const n of treeEntries(this.t.vars, from)) {
      if (!n.k.startsWith(prefix)) break;
      if (vars.length === perPage) return { vars, nextToken: n.k };
      vars.push(toMeta(n.v));
    }
    return { vars };
  }

  /** Every lock held now; the leader rebuilds its TTL timers from this. */
  heldLocks(): HeldLock[] {
    const out: HeldLock[] = [];
    for (const n of treeEntries(this.t.locks)) out.push({ path: n.k, lockId: n.v.ID, ttlMs: n.v.TTL });
    return out;
  }

  tokenByAccessor(accessorId: string): AclToken | undefined {
    return treeGet(this.t.tokens, accessorId);
  }

  tokenBySecretHash(secretHash: string): AclToken | undefined {
    const accessor = treeGet(this.t.secrets, secretHash);
    return accessor === undefined ? undefined : treeGet(this.t.tokens, accessor);
  }

  /** All tokens sorted by AccessorID (ACL tables are small: bounded by what operators create). */
  listTokens(): AclToken[] {
    return [...treeEntries(this.t.tokens)].map((n) => n.v);
  }

  policy(name: string): AclPolicy | undefined {
    return treeGet(this.t.policies, name);
  }

  listPolicies(): AclPolicy[] {
    return [...treeEntries(this.t.policies)].map((n) => n.v);
  }

  aclBootstrapped(): boolean {
    return treeGet(this.t.meta, "bootstrap") !== undefined;
  }

  /** The persist stream: every row of every table, as plain objects, lazily. */
  *records(): Generator<SnapshotRecord, void, undefined> {
    for (const n of treeEntries(this.t.meta)) yield { t: "acl_meta", v: n.v };
    for (const n of treeEntries(this.t.policies)) yield { t: "acl_policies", v: n.v };
    for (const n of treeEntries(this.t.tokens)) yield { t: "acl_tokens", v: n.v };
    for (const n of treeEntries(this.t.vars)) yield { t: "vars", v: n.v };
  }
}
