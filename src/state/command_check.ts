// A hand-written acceptance check for the hottest command, var.put, run by every
// server on every applied entry: it accepts only commands commandSchema accepts,
// returning the same output, and says "not sure" (undefined) for everything else
// so the caller asks zod, which decides. zod's parse was about a third of apply's
// CPU and allocations on a loaded leader. Kept equal to zod by
// test/state/command_check.test.ts.
import type { Command } from "./commands.ts";
import { ID_RE, isTime, itemsOk, plainObject } from "./variable_check.ts";
import { LIMITS, pathProblem } from "./tables.ts";

type VarPut = Extract<Command, { op: "var.put" }>;

/** commandSchema.parse(cmd) for a var.put this check can vouch for; undefined otherwise. Items is the caller's object (zod copies it). */
export function fastVarPut(cmd: unknown): VarPut | undefined {
  if (!plainObject(cmd) || cmd.op !== "var.put") return undefined;
  let keys = 0;
  let hasCas = false;
  let hasLockId = false;
  for (const k in cmd) {
    switch (k) {
      case "op":
      case "path":
      case "items":
      case "now":
        keys++;
        break;
      case "cas":
        hasCas = true;
        break;
      case "lockId":
        hasLockId = true;
        break;
      default:
        return undefined;
    }
  }
  if (keys !== 4) return undefined;
  const { path, items, now } = cmd;
  if (typeof path !== "string" || pathProblem(path) !== undefined || !isTime(now) || !itemsOk(items)) return undefined;
  let cas: number | undefined;
  if (hasCas) {
    // An optional key present as undefined is left to zod.
    if (!isTime(cmd.cas)) return undefined;
    cas = cmd.cas;
  }
  let lockId: string | undefined;
  if (hasLockId) {
    const id = cmd.lockId;
    if (typeof id !== "string" || id.length === 0 || id.length > LIMITS.idMaxChars || !ID_RE.test(id)) return undefined;
    lockId = id;
  }
  // zod's output order is the schema's: op, path, items, cas, lockId, now.
  if (!hasCas && !hasLockId) return { op: "var.put", path, items, now };
  if (!hasLockId) return { op: "var.put", path, items, cas, now };
  if (!hasCas) return { op: "var.put", path, items, lockId, now };
  return { op: "var.put", path, items, cas, lockId, now };
}
