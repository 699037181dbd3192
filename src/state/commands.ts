// Every command the state machine applies: the zod schemas and their types. The
// server CBOR-encodes a Command into a raft entry; the leader puts in everything
// non-deterministic (now, generated IDs, secret hashes) before proposing it.
import { z } from "zod";
import type { ErrorCode } from "../lib/errors.ts";
import {
  aclPolicyInputSchema,
  aclTokenInputSchema,
  idSchema,
  itemsSchema,
  lockDelaySchema,
  lockTtlSchema,
  nameSchema,
  pathSchema,
  timeMs,
} from "./tables.ts";

const cas = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const commandSchema = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("var.put"),
    path: pathSchema,
    items: itemsSchema,
    cas: cas.optional(),
    lockId: idSchema.optional(),
    now: timeMs,
  }),
  z.strictObject({ op: z.literal("var.delete"), path: pathSchema, cas: cas.optional(), lockId: idSchema.optional(), now: timeMs }),
  z.strictObject({
    op: z.literal("var.lock-acquire"),
    path: pathSchema,
    items: itemsSchema.optional(),
    lockId: idSchema,
    ttlMs: lockTtlSchema,
    lockDelayMs: lockDelaySchema,
    now: timeMs,
  }),
  z.strictObject({ op: z.literal("var.lock-renew"), path: pathSchema, lockId: idSchema, now: timeMs }),
  z.strictObject({ op: z.literal("var.lock-release"), path: pathSchema, lockId: idSchema, now: timeMs }),
  /** Committed by the leader's TTL timer; a stale one (lock already gone or re-acquired) is a harmless CONFLICT. */
  z.strictObject({ op: z.literal("var.lock-expire"), path: pathSchema, lockId: idSchema, now: timeMs }),
  z.strictObject({ op: z.literal("acl.bootstrap"), token: aclTokenInputSchema, now: timeMs }),
  z.strictObject({ op: z.literal("acl.token-upsert"), token: aclTokenInputSchema, now: timeMs }),
  z.strictObject({ op: z.literal("acl.token-delete"), accessorId: idSchema, now: timeMs }),
  z.strictObject({ op: z.literal("acl.policy-upsert"), policy: aclPolicyInputSchema, now: timeMs }),
  z.strictObject({ op: z.literal("acl.policy-delete"), name: nameSchema, now: timeMs }),
]);

export type Command = z.infer<typeof commandSchema>;
export type CommandOp = Command["op"];
export type CommandOf<O extends CommandOp> = Extract<Command, { op: O }>;

/** What applying a command answers. A refused command (e.g. CAS conflict) is a result, never an exception. */
export type ApplyResult = { ok: true; value: unknown } | { ok: false; code: ErrorCode; message: string; detail?: unknown };
