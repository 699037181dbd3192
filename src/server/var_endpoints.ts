// Variable endpoints: get/list (blocking, stale-capable reads) and put/delete/
// lock-acquire/renew/release (writes through raft on the leader).
import { z } from "zod";
import { EdgeError } from "../lib/errors.ts";
import type { StateStore } from "../state/state_store.ts";
import { LIMITS, type Variable, type VariableLock, type VariableMeta } from "../state/tables.ts";
import { durationArg, emptyReply, endpoint, items, path } from "./endpoints.ts";
import type { LockTimers } from "./lock_timers.ts";

const DEFAULT_LOCK_TTL_MS = 15_000;
const DEFAULT_LOCK_DELAY_MS = 15_000;

/** A variable's lock as clients see it: its ID only for whoever acquired it. */
export type PublicLock = Omit<VariableLock, "ID"> & { ID?: string };
/** A variable as clients see it (see publicVar). */
export type PublicVar = Omit<Variable, "LockDelayUntil" | "Lock"> & { Lock?: PublicLock };
/** One page of a listing: variables without their items, and where the next page starts. */
export interface VarPage {
  vars: VariableMeta[];
  nextToken?: string;
}

export function varEndpoints(state: () => StateStore, locks: () => LockTimers | undefined) {
  return {
    "Var.Get": endpoint({
      kind: "read",
      args: z.object({ path }),
      handler: async (a, ctx) =>
        ctx.blocking("vars", a.path, () => {
          const s = state();
          return { reply: publicVar(s.getVar(a.path) ?? null), index: s.tableIndex("vars") };
        }),
    }),
    "Var.List": endpoint({
      kind: "read",
      args: z.object({
        prefix: z.string().max(1024),
        perPage: z.number().int().min(1).max(1000),
        nextToken: z.string().max(1024).optional(),
      }),
      handler: async (a, ctx) =>
        ctx.blocking("vars", undefined, (): { reply: VarPage; index: number } => {
          const s = state();
          return { reply: s.listVars(a.prefix, a.perPage, a.nextToken), index: s.tableIndex("vars") };
        }),
    }),
    "Var.Put": endpoint({
      kind: "write",
      args: z.object({ path, items, cas: z.number().int().nonnegative().optional(), lockId: z.string().max(128).optional() }),
      handler: async (a, ctx) => {
        const raw = await ctx
          .propose({
            op: "var.put",
            path: a.path,
            items: a.items,
            ...(a.cas !== undefined ? { cas: a.cas } : {}),
            ...(a.lockId ? { lockId: a.lockId } : {}),
            now: Date.now(),
          })
          .catch(publicConflict);
        const reply = publicVar(raw as Variable);
        return { reply };
      },
    }),
    "Var.Delete": endpoint({
      kind: "write",
      args: z.object({ path, cas: z.number().int().nonnegative().optional(), lockId: z.string().max(128).optional() }),
      handler: async (a, ctx) => {
        await ctx
          .propose({
            op: "var.delete",
            path: a.path,
            ...(a.cas !== undefined ? { cas: a.cas } : {}),
            ...(a.lockId ? { lockId: a.lockId } : {}),
            now: Date.now(),
          })
          .catch(publicConflict);
        // The state machine answers a delete with null (state/vars_apply.ts); the client gets an empty object.
        return emptyReply();
      },
    }),
    "Var.LockAcquire": endpoint({
      kind: "write",
      args: z.object({ path, items: items.optional(), ttl: z.string().max(32).optional(), lockDelay: z.string().max(32).optional() }),
      handler: async (a, ctx) => {
        const ttlMs = Math.round(durationArg(a.ttl, DEFAULT_LOCK_TTL_MS, "Lock.TTL"));
        const lockDelayMs = Math.round(durationArg(a.lockDelay, DEFAULT_LOCK_DELAY_MS, "Lock.LockDelay"));
        // Checked here so the client reads the field it sent, not the internal command's schema.
        if (ttlMs < LIMITS.lockTtlMinMs || ttlMs > LIMITS.lockTtlMaxMs) {
          throw new EdgeError(
            "BAD_REQUEST",
            `invalid Lock.TTL "${a.ttl}": must be between ${LIMITS.lockTtlMinMs / 1000}s and ${LIMITS.lockTtlMaxMs / 3_600_000}h`,
          );
        }
        if (lockDelayMs < 0 || lockDelayMs > LIMITS.lockDelayMaxMs) {
          throw new EdgeError(
            "BAD_REQUEST",
            `invalid Lock.LockDelay "${a.lockDelay}": must be between 0s and ${LIMITS.lockDelayMaxMs / 3_600_000}h`,
          );
        }
        const lockId = crypto.randomUUID();
        const raw = await ctx
          .propose({
            op: "var.lock-acquire",
            path: a.path,
            ...(a.items ? { items: a.items } : {}),
            lockId,
            ttlMs,
            lockDelayMs,
            now: Date.now(),
          })
          .catch(publicConflict);
        const reply = publicVar(raw as Variable, true);
        locks()?.arm(a.path, lockId, ttlMs);
        return { reply };
      },
    }),
    "Var.LockRenew": endpoint({
      kind: "write",
      args: z.object({ path, lockId: z.string().min(1).max(128) }),
      handler: async (a, ctx) => {
        const raw = await ctx.propose({ op: "var.lock-renew", path: a.path, lockId: a.lockId, now: Date.now() }).catch(publicConflict);
        const reply = publicVar(raw as Variable, true);
        const v = state().getVar(a.path);
        if (v?.Lock?.ID === a.lockId) locks()?.arm(a.path, a.lockId, v.Lock.TTL);
        return { reply };
      },
    }),
    "Var.LockRelease": endpoint({
      kind: "write",
      args: z.object({ path, lockId: z.string().min(1).max(128) }),
      handler: async (a, ctx) => {
        const raw = await ctx.propose({ op: "var.lock-release", path: a.path, lockId: a.lockId, now: Date.now() }).catch(publicConflict);
        const reply = publicVar(raw as Variable);
        locks()?.disarm(a.path, a.lockId);
        return { reply };
      },
    }),
  };
}

/**
 * A variable as clients see it: the internal lock-delay bookkeeping is dropped, and the lock's ID
 * only goes to whoever acquired it (anyone holding the ID could change or release the variable).
 */
export function publicVar(v: Variable, showLockId?: boolean): PublicVar;
export function publicVar(v: Variable | null, showLockId?: boolean): PublicVar | null;
export function publicVar(v: Variable | null, showLockId = false): PublicVar | null {
  if (!v || typeof v !== "object") return v;
  // The rest keeps the variable's key order, and assigning Lock below keeps its place: the JSON is unchanged.
  const { LockDelayUntil: _d, ...rest }: PublicVar & { LockDelayUntil?: number } = v;
  const lock = rest.Lock;
  if (lock && !showLockId) {
    const { ID: _id, ...l } = lock;
    rest.Lock = l;
  }
  return rest;
}

/** Re-throw a refused write with the conflicting variable made public. */
export function publicConflict(e: unknown): never {
  if (e instanceof EdgeError && e.code === "CONFLICT" && e.detail !== undefined) {
    // A refused variable command carries the variable it found (state/vars_apply.ts refuse).
    throw new EdgeError("CONFLICT", e.message, publicVar(e.detail as Variable));
  }
  throw e;
}
