// Rebuilding the tables from a persist stream: every record is validated (the
// variableSchema-equivalent fast check for vars, zod for the rest and for every
// error) and a malformed one throws an error naming the record and field; the
// trees are then built balanced in O(n). Nothing of the live store is touched.
import type { z } from "zod";
import { assertIndex } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import { pause, treeFromSortedKeys, treeFromSortedKeysAsync, type Tree } from "./ordered_tree.ts";
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
  type Variable,
  type VariableLock,
} from "./tables.ts";
import { fastVariable } from "./variable_check.ts";

/** A persist stream that cannot be restored; nothing has changed when it is thrown. */
export class RestoreError extends EdgeError {
  constructor(message: string) {
    super("BAD_REQUEST", `snapshot state is invalid: ${message}`);
    this.name = "RestoreError";
  }
}

/**
 * A records iterable may also offer its records a block at a time under this key
 * (readSnapshot's `records` does): restore then pays one await per block instead
 * of one per record. A registered symbol, so the snapshot reader needs no import from here.
 */
export const RECORD_BATCHES: unique symbol = Symbol.for("edgenode.record-batches") as never;
export type BatchedRecords = { [RECORD_BATCHES](): AsyncIterable<readonly unknown[]> };

/** Rows of one table as parallel arrays: keys[i] is the key of rows[i]. */
class Rows<V> {
  keys: string[] = [];
  rows: V[] = [];

  push(key: string, row: V): void {
    this.keys.push(key);
    this.rows.push(row);
  }

  /** Sort by key (in place) if the input was not already in order; throws on a duplicate key. */
  tree(table: string): Tree<V> {
    const { keys, rows } = this;
    let sorted = true;
    for (let i = 1; i < keys.length && sorted; i++) sorted = (keys[i - 1] as string) < (keys[i] as string);
    if (!sorted) {
      const order = keys
        .map((_, i) => i)
        .sort((a, b) => {
          const ka = keys[a] as string;
          const kb = keys[b] as string;
          return ka < kb ? -1 : ka > kb ? 1 : 0;
        });
      this.keys = order.map((i) => keys[i] as string);
      this.rows = order.map((i) => rows[i] as V);
      for (let i = 1; i < this.keys.length; i++) {
        if (this.keys[i - 1] === this.keys[i]) throw new RestoreError(`table ${table} has two records with key "${this.keys[i]}"`);
      }
    }
    return treeFromSortedKeys(this.keys, this.rows);
  }

  /** tree(), a slice at a time with turns of the event loop between (for a large table). */
  async treeAsync(table: string): Promise<Tree<V>> {
    const { keys, rows } = this;
    if (keys.length <= SLICE) return this.tree(table);
    let sorted = true;
    for (let i = 1; i < keys.length && sorted; i++) sorted = (keys[i - 1] as string) < (keys[i] as string);
    if (!sorted) {
      const order = await sortedOrder(keys);
      this.keys = new Array<string>(order.length);
      this.rows = new Array<V>(order.length);
      for (let i = 0; i < order.length; i++) {
        this.keys[i] = keys[order[i] as number] as string;
        this.rows[i] = rows[order[i] as number] as V;
      }
      for (let i = 1; i < this.keys.length; i++) {
        if (this.keys[i - 1] === this.keys[i]) throw new RestoreError(`table ${table} has two records with key "${this.keys[i]}"`);
      }
    }
    return treeFromSortedKeysAsync(this.keys, this.rows, SLICE);
  }
}

/** Entries sorted or built between two turns of the event loop. */
const SLICE = 32_768;

/**
 * The indexes of `keys` in key order: runs of SLICE sorted, then merged pairwise, with a turn of the
 * event loop after each run and every SLICE merged entries. Sorting a million keys in one go held the
 * loop for a third of a second here.
 */
async function sortedOrder(keys: readonly string[]): Promise<number[]> {
  const n = keys.length;
  const cmp = (a: number, b: number): number => {
    const ka = keys[a] as string;
    const kb = keys[b] as string;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
  let src: number[] = new Array<number>(n);
  for (let lo = 0; lo < n; lo += SLICE) {
    const hi = Math.min(n, lo + SLICE);
    const run: number[] = [];
    for (let i = lo; i < hi; i++) run.push(i);
    run.sort(cmp);
    for (let i = lo; i < hi; i++) src[i] = run[i - lo] as number;
    await pause();
  }
  let dst: number[] = new Array<number>(n);
  let steps = 0;
  for (let width = SLICE; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(n, lo + width);
      const hi = Math.min(n, lo + 2 * width);
      let i = lo;
      let j = mid;
      for (let k = lo; k < hi; k++) {
        // Ties take the left run first: the sort is stable, as Array.prototype.sort is.
        if (i < mid && (j >= hi || cmp(src[i] as number, src[j] as number) <= 0)) dst[k] = src[i++] as number;
        else dst[k] = src[j++] as number;
        if (++steps === SLICE) {
          steps = 0;
          await pause();
        }
      }
    }
    [src, dst] = [dst, src];
  }
  return src;
}

function check<S extends z.ZodType>(schema: S, v: unknown, n: number, table: string): z.output<S> {
  const r = schema.safeParse(v);
  if (!r.success) throw new RestoreError(`record ${n} (table ${table}): ${zodMessage(r.error)}`);
  return r.data;
}

/**
 * Collects validated rows table by table, then builds the trees. Synchronous, so callers can feed it whole chunks.
 * Variables, the bulk of a snapshot, go through a hand-written check that accepts only what
 * variableSchema accepts; anything it is unsure of goes to zod, which decides and words the error.
 * `zodOnly` skips the fast check: the reference behaviour, for tests and benchmarks.
 */
export class TablesBuilder {
  private readonly vars = new Rows<Variable>();
  private readonly tokens = new Rows<AclToken>();
  private readonly policies = new Rows<AclPolicy>();
  private readonly meta = new Rows<AclMeta>();
  private n = 0;

  constructor(private readonly options: { zodOnly?: boolean } = {}) {}

  add(rec: unknown): void {
    const n = ++this.n;
    if (typeof rec !== "object" || rec === null || !("t" in rec) || !("v" in rec)) {
      throw new RestoreError(`record ${n} is not a {t, v} record`);
    }
    const table = (rec as { t: unknown }).t;
    const v = (rec as { v: unknown }).v;
    switch (table) {
      case "vars": {
        const row = (this.options.zodOnly ? undefined : fastVariable(v)) ?? check(variableSchema, v, n, table);
        this.vars.push(row.Path, row);
        break;
      }
      case "acl_tokens": {
        const row = check(aclTokenSchema, v, n, table);
        this.tokens.push(row.AccessorID, row);
        break;
      }
      case "acl_policies": {
        const row = check(aclPolicySchema, v, n, table);
        this.policies.push(row.Name, row);
        break;
      }
      case "acl_meta": {
        const row = check(aclMetaSchema, v, n, table);
        this.meta.push(row.Key, row);
        break;
      }
      default:
        throw new RestoreError(`record ${n} names unknown table ${JSON.stringify(table)} (known: ${TABLES.join(", ")})`);
    }
  }

  /** add() each of a block of records. */
  addAll(recs: readonly unknown[]): void {
    for (let i = 0; i < recs.length; i++) this.add(recs[i]);
  }

  /** The tables, the variables' tree (the bulk) built a slice at a time: the event loop keeps turning. */
  async finish(restoreIndex: number): Promise<Tables> {
    assertIndex(restoreIndex, "restore index");
    return this.assemble(restoreIndex, await this.vars.treeAsync("vars"));
  }

  private assemble(restoreIndex: number, varTree: Tree<Variable>): Tables {
    assertIndex(restoreIndex, "restore index");
    const locks = new Rows<VariableLock>();
    const vars = this.vars.rows; // sorted now
    for (let i = 0; i < vars.length; i++) {
      const lock = (vars[i] as Variable).Lock;
      if (lock !== undefined) locks.push((vars[i] as Variable).Path, lock);
    }
    const tokenTree = this.tokens.tree("acl_tokens");
    const secrets = new Rows<string>();
    for (const t of this.tokens.rows) secrets.push(t.SecretHash, t.AccessorID);
    let secretTree: Tree<string>;
    try {
      secretTree = secrets.tree("acl_tokens secrets");
    } catch {
      throw new RestoreError("table acl_tokens has two tokens with the same secret");
    }
    return {
      applied: restoreIndex,
      // Every table index becomes the restore's index, so every index a client sees
      // afterwards is above what it saw before and blocking queries wake.
      indexes: { vars: restoreIndex, acl_tokens: restoreIndex, acl_policies: restoreIndex, acl_meta: restoreIndex },
      vars: varTree,
      locks: locks.tree("locks"),
      tokens: tokenTree,
      secrets: secretTree,
      policies: this.policies.tree("acl_policies"),
      meta: this.meta.tree("acl_meta"),
    };
  }
}

function batchesOf(records: object): AsyncIterable<readonly unknown[]> | undefined {
  const f = (records as Partial<BatchedRecords>)[RECORD_BATCHES];
  return typeof f === "function" ? f.call(records) : undefined;
}

export async function restoreTables(
  records: AsyncIterable<unknown> | Iterable<unknown> | BatchedRecords,
  restoreIndex: number,
  options?: { zodOnly?: boolean },
): Promise<Tables> {
  assertIndex(restoreIndex, "restore index");
  const b = new TablesBuilder(options);
  const batches = batchesOf(records);
  if (batches !== undefined) {
    for await (const batch of batches) b.addAll(batch);
  } else if (Symbol.iterator in records) {
    // A plain iterable needs no await per record.
    for (const rec of records as Iterable<unknown>) b.add(rec);
  } else {
    for await (const rec of records as AsyncIterable<unknown>) b.add(rec);
  }
  return b.finish(restoreIndex);
}
