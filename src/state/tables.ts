// The replicated tables' record shapes, their limits, and the zod schemas that
// validate them — both in commands and in snapshot records on restore.
// Times are milliseconds since the epoch (numbers); the HTTP layer formats them.
import { z } from "zod";
import { encode } from "../lib/codec.ts";

export const TABLES = ["vars", "acl_tokens", "acl_policies", "acl_meta"] as const;
export type TableName = (typeof TABLES)[number];

export const LIMITS = {
  pathMaxChars: 128,
  itemsMaxEncodedBytes: 64 * 1024,
  lockTtlMinMs: 1_000,
  lockTtlMaxMs: 24 * 3_600_000,
  lockDelayMaxMs: 3_600_000,
  idMaxChars: 64,
  nameMaxChars: 128,
  descriptionMaxChars: 256,
  rulesMaxChars: 64 * 1024,
  policiesPerToken: 64,
  listPerPageMax: 10_000,
} as const;

const PATH_RE = /^[a-zA-Z0-9\-_~/]+$/;

/** Why `path` is not a valid variable path, or undefined when it is. */
export function pathProblem(path: string): string | undefined {
  if (path.length === 0) return "variable path must not be empty";
  if (path.length > LIMITS.pathMaxChars) return `variable path is ${path.length} characters; the limit is ${LIMITS.pathMaxChars}`;
  if (!PATH_RE.test(path)) return `variable path "${path}" may only contain letters, digits and - _ ~ /`;
  if (path.startsWith("/") || path.endsWith("/")) return `variable path "${path}" must not start or end with "/"`;
  if (path.includes("//")) return `variable path "${path}" must not contain "//"`;
  return undefined;
}

/** Why `items` is not acceptable, or undefined when it is. Measures the CBOR encoding, the form it is stored in. */
export function itemsProblem(items: Record<string, string>): string | undefined {
  for (const k of Object.keys(items)) {
    if (k.length === 0) return "item keys must not be empty";
  }
  const size = encode(items).length;
  if (size > LIMITS.itemsMaxEncodedBytes) return `items are ${size} bytes encoded; the limit is ${LIMITS.itemsMaxEncodedBytes}`;
  return undefined;
}

const safeIndex = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const timeMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const idSchema = z
  .string()
  .regex(/^[a-zA-Z0-9-]+$/, "must be letters, digits and -")
  .min(1)
  .max(LIMITS.idMaxChars);
export const nameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9-]+$/, "must be letters, digits and -")
  .min(1)
  .max(LIMITS.nameMaxChars);
export const pathSchema = z.string().superRefine((p, ctx) => {
  const problem = pathProblem(p);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
export const itemsSchema = z
  .unknown()
  .superRefine((raw, ctx) => {
    // Checked on the raw object: rebuilding it would silently drop an own "__proto__" key.
    if (typeof raw === "object" && raw !== null && Object.hasOwn(raw, "__proto__")) {
      ctx.addIssue({ code: "custom", message: 'item key "__proto__" is not allowed' });
    }
  })
  .pipe(
    z.record(z.string(), z.string()).superRefine((items, ctx) => {
      const problem = itemsProblem(items);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }),
  );
export const lockTtlSchema = z.number().int().min(LIMITS.lockTtlMinMs).max(LIMITS.lockTtlMaxMs);
export const lockDelaySchema = z.number().int().min(0).max(LIMITS.lockDelayMaxMs);

export const variableLockSchema = z.strictObject({ ID: idSchema, TTL: lockTtlSchema, LockDelay: lockDelaySchema });

export const variableSchema = z
  .strictObject({
    Path: pathSchema,
    Items: itemsSchema,
    Lock: variableLockSchema.optional(),
    /** Set when a lock expired: nobody may acquire before this time (ms). Internal, replicated, kept in snapshots. */
    LockDelayUntil: timeMs.optional(),
    CreateIndex: safeIndex,
    ModifyIndex: safeIndex,
    CreateTime: timeMs,
    ModifyTime: timeMs,
  })
  .refine((v) => v.CreateIndex <= v.ModifyIndex, "CreateIndex must not exceed ModifyIndex");
export type Variable = Readonly<z.infer<typeof variableSchema>>;
export type VariableLock = Readonly<z.infer<typeof variableLockSchema>>;
/** What a listing returns: a variable without its Items. */
export type VariableMeta = Omit<Variable, "Items">;

export const aclTokenSchema = z.strictObject({
  AccessorID: idSchema,
  /** Hex SHA-256 of the secret, computed by the leader; the secret itself is never stored. */
  SecretHash: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
  Name: z.string().max(LIMITS.nameMaxChars),
  Type: z.enum(["management", "client"]),
  Policies: z.array(nameSchema).max(LIMITS.policiesPerToken),
  CreateTime: timeMs,
  CreateIndex: safeIndex,
  ModifyIndex: safeIndex,
});
export type AclToken = Readonly<z.infer<typeof aclTokenSchema>>;
/** What a command carries: the indexes are the state machine's to assign. */
export const aclTokenInputSchema = aclTokenSchema.omit({ CreateIndex: true, ModifyIndex: true });
export type AclTokenRecord = z.infer<typeof aclTokenInputSchema>;

export const aclPolicySchema = z.strictObject({
  Name: nameSchema,
  Description: z.string().max(LIMITS.descriptionMaxChars),
  /** HCL text; parsed and checked by the HTTP layer before it is proposed. */
  Rules: z.string().max(LIMITS.rulesMaxChars),
  CreateIndex: safeIndex,
  ModifyIndex: safeIndex,
});
export type AclPolicy = Readonly<z.infer<typeof aclPolicySchema>>;
export const aclPolicyInputSchema = aclPolicySchema.omit({ CreateIndex: true, ModifyIndex: true });

/** One row, key "bootstrap", present once ACLs have been bootstrapped. */
export const aclMetaSchema = z.strictObject({ Key: z.literal("bootstrap"), BootstrapIndex: safeIndex, BootstrapTime: timeMs });
export type AclMeta = Readonly<z.infer<typeof aclMetaSchema>>;

/** One record of the persist stream: which table, and the row as a plain CBOR-friendly object. */
export type SnapshotRecord = { t: TableName; v: unknown };

/** Render a zod error as one line naming the field. */
export function zodMessage(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
}
