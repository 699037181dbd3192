// A hand-written acceptance check for variable rows, for restore's hot path: it
// accepts only rows variableSchema accepts, returning the same output, and says
// "not sure" (undefined) for everything else so the caller asks zod, which decides.
import { LIMITS, pathProblem, type Variable, type VariableLock } from "./tables.ts";

export const ID_RE = /^[a-zA-Z0-9-]+$/;
const OBJECT_PROTO = Object.prototype;

/** Bytes of a CBOR head (major type + argument) for an argument of `n`. */
function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n <= 0xffffffff ? 5 : 9;
}

/**
 * Exact size of codec.encode(items) for a plain object of string values, without
 * encoding. Mirrors cbor-x with useRecords:false: a map always gets a map16 head
 * (3 bytes, 5 from 65536 entries, which it back-patches), strings get their
 * minimal text-string head, and UTF-8 lengths count a lone surrogate as the 3
 * bytes of U+FFFD, as cbor-x and Buffer.byteLength both do. The caller has
 * checked that every own enumerable key maps to a string.
 */
export function encodedItemsSize(items: Readonly<Record<string, string>>): number {
  let size = 0;
  let n = 0;
  for (const k in items) {
    const v = items[k] as string;
    const kb = k.length < 64 && isAscii(k) ? k.length : Buffer.byteLength(k, "utf8");
    const vb = Buffer.byteLength(v, "utf8");
    size += headBytes(kb) + kb + headBytes(vb) + vb;
    n++;
  }
  return size + (n < 0x10000 ? 3 : 5);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

export const isTime = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;

/**
 * Keys whose presence changes how cbor-x or zod treat the object (prototype
 * setters, constructor dispatch, toJSON, the own-property filter): left to zod.
 */
function specialKey(k: string): boolean {
  return k === "__proto__" || k === "constructor" || k === "toJSON" || k === "hasOwnProperty";
}

export function plainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && Object.getPrototypeOf(x) === OBJECT_PROTO;
}

export function itemsOk(items: unknown): items is Record<string, string> {
  if (!plainObject(items)) return false;
  if (Object.hasOwn(items, "__proto__")) return false;
  for (const k in items) {
    if (k.length === 0 || specialKey(k) || typeof items[k] !== "string") return false;
  }
  return encodedItemsSize(items as Record<string, string>) <= LIMITS.itemsMaxEncodedBytes;
}

function lockOk(lock: unknown): VariableLock | undefined {
  if (!plainObject(lock)) return undefined;
  let keys = 0;
  for (const k in lock) {
    if (k !== "ID" && k !== "TTL" && k !== "LockDelay") return undefined;
    keys++;
  }
  const { ID, TTL, LockDelay } = lock;
  if (keys !== 3 || typeof ID !== "string" || ID.length === 0 || ID.length > LIMITS.idMaxChars || !ID_RE.test(ID)) return undefined;
  if (typeof TTL !== "number" || !Number.isSafeInteger(TTL) || TTL < LIMITS.lockTtlMinMs || TTL > LIMITS.lockTtlMaxMs) return undefined;
  if (typeof LockDelay !== "number" || !Number.isSafeInteger(LockDelay) || LockDelay < 0 || LockDelay > LIMITS.lockDelayMaxMs)
    return undefined;
  return { ID, TTL, LockDelay };
}

const ROW_KEYS = ["Path", "Items", "CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime"];

/**
 * The row variableSchema.parse(v) would return, when this check can tell that
 * it accepts `v`; undefined when `v` is invalid or unusual (then ask zod). Items
 * is the caller's object itself (zod would copy it), and so is the row when its keys are in zod's
 * order: rows are never mutated.
 */
export function fastVariable(v: unknown): Variable | undefined {
  if (!plainObject(v)) return undefined;
  let keys = 0;
  let hasLock = false;
  let hasDelay = false;
  // Whether v's keys are zod's output keys in zod's order (as persisted rows are): then v itself is the
  // row, and a restore makes no copy of each. (A decoded map has no symbol or non-enumerable keys,
  // which zod would drop and this does not look for.)
  let inOrder = true;
  for (const k in v) {
    switch (k) {
      case "Path":
      case "Items":
      case "CreateIndex":
      case "ModifyIndex":
      case "CreateTime":
      case "ModifyTime":
        if (k !== ROW_KEYS[keys]) inOrder = false;
        keys++;
        break;
      case "Lock":
        hasLock = true;
        break;
      case "LockDelayUntil":
        hasDelay = true;
        break;
      default:
        return undefined;
    }
  }
  if (keys !== 6) return undefined;
  const { Path, Items, CreateIndex, ModifyIndex, CreateTime, ModifyTime } = v;
  if (typeof Path !== "string" || pathProblem(Path) !== undefined) return undefined;
  if (!isTime(CreateIndex) || !isTime(ModifyIndex) || !isTime(CreateTime) || !isTime(ModifyTime) || CreateIndex > ModifyIndex)
    return undefined;
  if (!itemsOk(Items)) return undefined;
  // Same key order as zod's output; an optional key present as undefined is left to zod.
  if (!hasLock && !hasDelay) return inOrder ? (v as Variable) : { Path, Items, CreateIndex, ModifyIndex, CreateTime, ModifyTime };
  const Lock: VariableLock | undefined = hasLock ? lockOk(v.Lock) : undefined;
  if (hasLock && Lock === undefined) return undefined;
  let LockDelayUntil: number | undefined;
  if (hasDelay) {
    const d = v.LockDelayUntil;
    if (!isTime(d)) return undefined;
    LockDelayUntil = d;
  }
  if (!hasDelay) return { Path, Items, Lock, CreateIndex, ModifyIndex, CreateTime, ModifyTime };
  if (!hasLock) return { Path, Items, LockDelayUntil, CreateIndex, ModifyIndex, CreateTime, ModifyTime };
  return { Path, Items, Lock, LockDelayUntil, CreateIndex, ModifyIndex, CreateTime, ModifyTime };
}
