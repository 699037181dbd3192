// Applying variable commands (put, delete, and the lock life cycle) to one
// generation of the tables. Pure and deterministic: time comes from cmd.now.
import { unreachable } from "../lib/assert.ts";
import type { ApplyResult, CommandOf } from "./commands.ts";
import { treeDelete, treeGet, treeSet } from "./ordered_tree.ts";
import type { Tables } from "./state_view.ts";
import type { TableName, Variable, VariableLock } from "./tables.ts";

export interface Applied {
  /** The next generation; the same object when nothing changed. */
  tables: Tables;
  result: ApplyResult;
  /** Rows that changed, for waking watches. */
  changed: [TableName, string][];
}

type VarCommand = CommandOf<"var.put" | "var.delete" | "var.lock-acquire" | "var.lock-renew" | "var.lock-release" | "var.lock-expire">;

const refuse = (t: Tables, message: string, detail?: Variable): Applied => ({
  tables: t,
  result: detail === undefined ? { ok: false, code: "CONFLICT", message } : { ok: false, code: "CONFLICT", message, detail },
  changed: [],
});

/** Replace (or remove, when `v` is undefined) the variable at `path`, keeping the lock index in step. */
function writeVar(t: Tables, index: number, path: string, v: Variable | undefined): Tables {
  const vars = v === undefined ? treeDelete(t.vars, path) : treeSet(t.vars, path, v);
  const locks = v?.Lock !== undefined ? treeSet(t.locks, path, v.Lock) : treeDelete(t.locks, path);
  return { ...t, vars, locks, indexes: { ...t.indexes, vars: index } };
}

/** Build the new row; optional fields are left out rather than set to undefined, so rows round-trip through CBOR exactly. */
function nextVar(
  cur: Variable | undefined,
  index: number,
  now: number,
  path: string,
  items: Record<string, string>,
  lock: VariableLock | undefined,
  lockDelayUntil: number | undefined,
): Variable {
  const v: {
    Path: string;
    Items: Record<string, string>;
    Lock?: VariableLock;
    LockDelayUntil?: number;
    CreateIndex: number;
    ModifyIndex: number;
    CreateTime: number;
    ModifyTime: number;
  } = {
    Path: path,
    Items: items,
    CreateIndex: cur?.CreateIndex ?? index,
    ModifyIndex: index,
    CreateTime: cur?.CreateTime ?? now,
    ModifyTime: now,
  };
  if (lock !== undefined) v.Lock = lock;
  // A lock delay that has passed is dropped on the next write; one still running is kept.
  if (lockDelayUntil !== undefined && lockDelayUntil > now) v.LockDelayUntil = lockDelayUntil;
  return v;
}

/** A locked variable changes only with its lock id; a lock id on an unlocked variable is a stale lock. */
function lockProblem(cur: Variable | undefined, lockId: string | undefined): string | undefined {
  if (cur?.Lock !== undefined) {
    if (lockId === undefined) return `variable "${cur.Path}" is locked; the request must carry its lock ID`;
    if (lockId !== cur.Lock.ID) return `variable "${cur.Path}" is locked by another lock ID`;
    return undefined;
  }
  if (lockId !== undefined) return `variable is not locked (the lock was released or expired)`;
  return undefined;
}

function casProblem(cur: Variable | undefined, cas: number | undefined): string | undefined {
  if (cas === undefined) return undefined;
  if (cas === 0) return cur === undefined ? undefined : `variable "${cur.Path}" already exists (cas=0 means create-only)`;
  if (cur === undefined) return `variable does not exist (cas=${cas})`;
  if (cur.ModifyIndex !== cas) return `variable "${cur.Path}" has ModifyIndex ${cur.ModifyIndex}, not ${cas}`;
  return undefined;
}

export function applyVarCommand(t: Tables, index: number, cmd: VarCommand): Applied {
  const cur = treeGet(t.vars, cmd.path);
  const changed: [TableName, string][] = [["vars", cmd.path]];
  switch (cmd.op) {
    case "var.put": {
      const problem = lockProblem(cur, cmd.lockId) ?? casProblem(cur, cmd.cas);
      if (problem !== undefined) return refuse(t, problem, cur);
      const v = nextVar(cur, index, cmd.now, cmd.path, cmd.items, cur?.Lock, cur?.LockDelayUntil);
      return { tables: writeVar(t, index, cmd.path, v), result: { ok: true, value: v }, changed };
    }
    case "var.delete": {
      const problem = lockProblem(cur, cmd.lockId) ?? casProblem(cur, cmd.cas);
      if (problem !== undefined) return refuse(t, problem, cur);
      // Deleting an absent variable succeeds and changes nothing (as Nomad does).
      if (cur === undefined) return { tables: t, result: { ok: true, value: null }, changed: [] };
      return { tables: writeVar(t, index, cmd.path, undefined), result: { ok: true, value: null }, changed };
    }
    case "var.lock-acquire": {
      if (cur?.Lock !== undefined) return refuse(t, `variable "${cmd.path}" is already locked`, cur);
      if (cur?.LockDelayUntil !== undefined && cur.LockDelayUntil > cmd.now) {
        return refuse(
          t,
          `variable "${cmd.path}" is in lock-delay for another ${cur.LockDelayUntil - cmd.now}ms after its lock expired`,
          cur,
        );
      }
      const lock: VariableLock = { ID: cmd.lockId, TTL: cmd.ttlMs, LockDelay: cmd.lockDelayMs };
      const v = nextVar(cur, index, cmd.now, cmd.path, cmd.items ?? cur?.Items ?? {}, lock, undefined);
      return { tables: writeVar(t, index, cmd.path, v), result: { ok: true, value: v }, changed };
    }
    case "var.lock-renew":
    case "var.lock-release":
    case "var.lock-expire": {
      if (cur?.Lock === undefined || cur.Lock.ID !== cmd.lockId) {
        return refuse(t, `lock ${cmd.lockId} on variable "${cmd.path}" is not held (released, expired or never acquired)`, cur);
      }
      // Renewal only restarts the leader's timer; the row does not change.
      if (cmd.op === "var.lock-renew") return { tables: t, result: { ok: true, value: cur }, changed: [] };
      const delayUntil = cmd.op === "var.lock-expire" && cur.Lock.LockDelay > 0 ? cmd.now + cur.Lock.LockDelay : undefined;
      const v = nextVar(cur, index, cmd.now, cmd.path, cur.Items, undefined, delayUntil);
      return { tables: writeVar(t, index, cmd.path, v), result: { ok: true, value: v }, changed };
    }
    default:
      return unreachable(cmd, "variable command");
  }
}
