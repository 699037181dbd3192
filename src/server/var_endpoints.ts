// Variable endpoints: get/list (blocking, stale-capable reads) and put/delete/
// lock-acquire/renew/release (writes through raft on the leader).
import { z } from "zod";
import { EdgeError } from "../lib/errors.ts";
import type { StateStore } from "../state/state_store.ts";
import { LIMITS } from "../state/tables.ts";
import { durationArg, items, path, type Endpoint } from "./endpoints.ts";
import type { LockTimers } from "./lock_timers.ts";

const DEFAULT_LOCK_TTL_MS = 15_000;
const DEFAULT_LOCK_DELAY_MS = 15_000;

export function varEndpoints(state: () => StateStore, locks: () => LockTimers | undefined): Record<string, Endpoint> {
  return {
    "Var.Get": {
      kind: "read",
      args: z.object({ path }),
      handler: async (a: { path: string }, ctx) =>
        ctx.blocking("vars", a.path, () => {
          const s = state();
          return { reply: publicVar(s.getVar(a.path) ?? null), index: s.tableIndex("vars") };
        }),
    },
    "Var.List": {
      kind: "read",
      args: z.object({
        prefix: z.string().max(1024),
        perPage: z.number().int().min(1).max(1000),
        nextToken: z.string().max(1024).optional(),
      }),
      handler: async (a: { prefix: string; perPage: number; nextToken?: string }, ctx) =>
        ctx.blocking("vars", undefined, () => {
          const s = state();
          return { reply: s.listVars(a.prefix, a.perPage, a.nextToken), index: s.tableIndex("vars") };
        }),
    },
    "Var.Put": {
      kind: "write",
      args: z.object({ path, items, cas: z.number().int().nonnegative().optional(), lockId: z.string().max(128).optional() }),
      handler: async (a: { path: string; items: Record<string, string>; cas?: number; lockId?: string }, ctx) => {
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
        const reply = publicVar(raw);
        return { reply };
      },
    },
    "Var.Delete": {
      kind: "write",
      args: z.object({ path, cas: z.number().int().nonnegative().optional(), lockId: z.string().max(128).optional() }),
      handler: async (a: { path: string; cas?: number; lockId?: string }, ctx) => {
        const raw = await ctx
          .propose({
            op: "var.delete",
            path: a.path,
            ...(a.cas !== undefined ? { cas: a.cas } : {}),
            ...(a.lockId ? { lockId: a.lockId } : {}),
            now: Date.now(),
          })
          .catch(publicConflict);
        const reply = publicVar(raw);
        return { reply: reply ?? {} };
      },
    },
    "Var.LockAcquire": {
      kind: "write",
      args: z.object({ path, items: items.optional(), ttl: z.string().max(32).optional(), lockDelay: z.string().max(32).optional() }),
      handler: async (a: { path: string; items?: Record<string, string>; ttl?: string; lockDelay?: string }, ctx) => {
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
        const reply = publicVar(raw, true);
        locks()?.arm(a.path, lockId, ttlMs);
        return { reply };
      },
    },
    "Var.LockRenew": {
      kind: "write",
      args: z.object({ path, lockId: z.string().min(1).max(128) }),
      handler: async (a: { path: string; lockId: string }, ctx) => {
        const raw = await ctx.propose({ op: "var.lock-renew", path: a.path, lockId: a.lockId, now: Date.now() }).catch(publicConflict);
        const reply = publicVar(raw, true);
        const v = state().getVar(a.path);
        if (v?.Lock?.ID === a.lockId) locks()?.arm(a.path, a.lockId, v.Lock.TTL);
        return { reply };
      },
    },
    "Var.LockRelease": {
      kind: "write",
      args: z.object({ path, lockId: z.string().min(1).max(128) }),
      handler: async (a: { path: string; lockId: string }, ctx) => {
        const raw = await ctx.propose({ op: "var.lock-release", path: a.path, lockId: a.lockId, now: Date.now() }).catch(publicConflict);
        const reply = publicVar(raw);
        locks()?.disarm(a.path, a.lockId);
        return { reply };
      },
    },
  };
}

/**
 * A variable as clients see it: the internal lock-delay bookkeeping is dropped, and the lock's ID
 * only goes to whoever acquired it (anyone holding the ID could change or release the variable).
 */
export function publicVar(v: unknown, showLockId = false): unknown {
  if (!v || typeof v !== "object") return v;
  const { LockDelayUntil: _d, ...rest } = v as Record<string, unknown> & { LockDelayUntil?: unknown };
  const lock = rest.Lock as Record<string, unknown> | undefined;
  if (lock && !showLockId) {
    const { ID: _id, ...l } = lock;
    rest.Lock = l;
  }
  return rest;
}

/** Re-throw a refused write with the conflicting variable made public. */
export function publicConflict(e: unknown): never {
  if (e instanceof EdgeError && e.code === "CONFLICT" && e.detail !== undefined) {
    throw new EdgeError("CONFLICT", e.message, publicVar(e.detail));
  }
  throw e;
}
