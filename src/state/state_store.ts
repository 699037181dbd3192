// The replicated state machine: applies committed commands in raft-index order,
// deterministically, to persistent tables; serves reads, watches that wake
// blocking queries, O(1) point-in-time views, and restore into a new store.
import { assert, assertIndex } from "../lib/assert.ts";
import { applyAclCommand } from "./acl_apply.ts";
import { fastVarPut } from "./command_check.ts";
import { commandSchema, type ApplyResult } from "./commands.ts";
import { RecordDecoder } from "./record_stream.ts";
import { restoreTables, TablesBuilder } from "./restore.ts";
import { EMPTY_TABLES, StateView, type HeldLock, type Tables } from "./state_view.ts";
import {
  zodMessage,
  type AclPolicy,
  type AclToken,
  type SnapshotRecord,
  type TableName,
  type Variable,
  type VariableMeta,
} from "./tables.ts";
import { applyVarCommand, type Applied } from "./vars_apply.ts";
import { WatchSet } from "./watches.ts";

export type { ApplyResult } from "./commands.ts";
export type { HeldLock } from "./state_view.ts";

export class StateStore {
  private t: Tables;
  private readonly watches = new WatchSet();
  private abandoned = false;

  constructor(tables: Tables = EMPTY_TABLES) {
    this.t = tables;
  }

  /**
   * Apply the command committed at raft `index`. `cmd` is what the entry decoded
   * to: it is validated here, and a malformed or refused command is a result,
   * never an exception. Indexes must increase (gaps are fine: no-ops, config changes).
   */
  apply(index: number, cmd: unknown): ApplyResult {
    assertIndex(index, "apply index");
    assert(index > this.t.applied, () => `apply index ${index} must be above the last applied index ${this.t.applied}`);
    assert(!this.abandoned, "apply on an abandoned state store");
    const fast = fastVarPut(cmd);
    const parsed = fast ? { success: true as const, data: fast } : commandSchema.safeParse(cmd);
    let out: Applied;
    if (!parsed.success) {
      out = {
        tables: this.t,
        result: { ok: false, code: "BAD_REQUEST", message: `invalid command: ${zodMessage(parsed.error)}` },
        changed: [],
      };
    } else {
      const c = parsed.data;
      out = c.op.startsWith("var.")
        ? applyVarCommand(this.t, index, c as Parameters<typeof applyVarCommand>[2])
        : applyAclCommand(this.t, index, c as Parameters<typeof applyAclCommand>[2]);
    }
    this.t = { ...out.tables, applied: index };
    for (const [table, key] of out.changed) this.watches.notify(table, key);
    return out.result;
  }

  /**
   * A new store with the same rows whose applied index and every table index are `restoreIndex`:
   * lets a restore build its store ahead of the commit and stamp the index when it applies.
   */
  restamped(restoreIndex: number): StateStore {
    assertIndex(restoreIndex, "restore index");
    assert(!this.abandoned, "restamp of an abandoned state store");
    const indexes = { ...this.t.indexes };
    for (const k of Object.keys(indexes) as TableName[]) indexes[k] = restoreIndex;
    return new StateStore({ ...this.t, applied: restoreIndex, indexes });
  }

  /** Raft index of the last applied command. */
  appliedIndex(): number {
    return this.t.applied;
  }

  /** The highest table index. */
  lastIndex(): number {
    return this.view().lastIndex();
  }

  tableIndex(table: TableName): number {
    return this.t.indexes[table];
  }

  /** A point-in-time view: O(1), and unaffected by later applies. */
  view(): StateView {
    return new StateView(this.t);
  }

  getVar(path: string): Variable | undefined {
    return this.view().getVar(path);
  }

  listVars(prefix: string, perPage: number, nextToken?: string): { vars: VariableMeta[]; nextToken?: string } {
    return this.view().listVars(prefix, perPage, nextToken);
  }

  heldLocks(): HeldLock[] {
    return this.view().heldLocks();
  }

  tokenByAccessor(accessorId: string): AclToken | undefined {
    return this.view().tokenByAccessor(accessorId);
  }

  tokenBySecretHash(secretHash: string): AclToken | undefined {
    return this.view().tokenBySecretHash(secretHash);
  }

  listTokens(): AclToken[] {
    return this.view().listTokens();
  }

  policy(name: string): AclPolicy | undefined {
    return this.view().policy(name);
  }

  listPolicies(): AclPolicy[] {
    return this.view().listPolicies();
  }

  aclBootstrapped(): boolean {
    return this.view().aclBootstrapped();
  }

  /**
   * Resolves on the next change to `key` of `table` (any row of it when `key` is
   * undefined), when `signal` aborts, or when this store is abandoned (replaced
   * by a restore). Callers re-read to learn which; an aborted wait leaves nothing behind.
   */
  watch(table: TableName, key?: string, signal?: AbortSignal): Promise<void> {
    return this.watches.wait(table, key, signal);
  }

  /** Watched keys and waiters; for tests and metrics. */
  watchStats(): { keys: number; waiters: number } {
    return this.watches.stats();
  }

  /**
   * Retire this store after a restore swapped in a new one: wakes every waiter
   * (so blocking queries re-run against the new store) and refuses further applies.
   */
  abandon(): void {
    this.abandoned = true;
    this.watches.close();
  }

  isAbandoned(): boolean {
    return this.abandoned;
  }

  /**
   * Build a NEW store from a persist stream (the live one is untouched, so a bad
   * stream changes nothing). Every table index and the applied index become
   * `restoreIndex`; rows keep their own Create/ModifyIndex. Throws RestoreError.
   */
  static async restore(
    records: AsyncIterable<SnapshotRecord | unknown> | Iterable<SnapshotRecord | unknown>,
    restoreIndex: number,
  ): Promise<StateStore> {
    return new StateStore(await restoreTables(records, restoreIndex));
  }

  /**
   * Restore straight from the record stream's bytes (encodeRecordStream's chunks,
   * cut anywhere); decodes and validates a chunk at a time. Throws RestoreError.
   */
  static async restoreFromBytes(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, restoreIndex: number): Promise<StateStore> {
    assertIndex(restoreIndex, "restore index");
    const decoder = new RecordDecoder();
    const builder = new TablesBuilder();
    for await (const chunk of chunks) {
      for (const rec of decoder.push(chunk)) builder.add(rec);
    }
    decoder.end();
    return new StateStore(await builder.finish(restoreIndex));
  }
}
