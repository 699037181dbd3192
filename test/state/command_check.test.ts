// The apply fast path must agree with zod: fastVarPut accepts only var.put commands
// that commandSchema accepts, returning the same command (keys in the same order),
// and leaves everything else to zod. Randomized over valid and mutated commands, seeded.
import { describe, expect, test } from "bun:test";
import { decode, encode } from "../../src/lib/codec.ts";
import { fastVarPut } from "../../src/state/command_check.ts";
import { commandSchema } from "../../src/state/commands.ts";
import { StateStore } from "../../src/state/state_store.ts";
import { LIMITS } from "../../src/state/tables.ts";
import { withSeed } from "./seeded_random.ts";

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

const PATH_CHARS = "abcXYZ019-_~/";
function randomPath(rand: Rand): string {
  const len = int(rand, 1, 40);
  let p = "p";
  while (p.length < len) p += pick(rand, [...PATH_CHARS]);
  return p.endsWith("/") ? `${p}x` : p.replaceAll("//", "/a");
}

function randomItems(rand: Rand): Record<string, string> {
  const items: Record<string, string> = {};
  const n = pick(rand, [0, 1, 1, 2, 3, 30]);
  for (let i = 0; i < n; i++) items[rand() < 0.2 ? String(int(rand, 0, 99)) : `k${int(rand, 0, 999)}é`.slice(0, int(rand, 1, 5))] = "v".repeat(pick(rand, [0, 1, 23, 24, 255, 256, 5000]));
  return items;
}

function validPut(rand: Rand): Record<string, unknown> {
  const c: Record<string, unknown> = { op: "var.put", path: randomPath(rand), items: randomItems(rand), now: pick(rand, [0, 1_700_000_000_000, Number.MAX_SAFE_INTEGER]) };
  if (rand() < 0.4) c.cas = pick(rand, [0, 1, 12345, Number.MAX_SAFE_INTEGER]);
  if (rand() < 0.4) c.lockId = pick(rand, ["L1", "a-b-c", "a".repeat(LIMITS.idMaxChars)]);
  // zod's output order is the schema's; shuffle the input's to show it does not matter.
  return Object.fromEntries(Object.entries(c).sort(() => rand() - 0.5));
}

const BAD_VALUES: unknown[] = [undefined, null, true, "1", -1, -0, 0.5, NaN, Infinity, 2 ** 53, 1e21, [], {}, [1], { a: 1 }, "", "x", "a_b", "a".repeat(LIMITS.idMaxChars + 1), 123n];

function withOwnProto<T extends object>(o: T): T {
  Object.defineProperty(o, "__proto__", { value: "x", enumerable: true, configurable: true, writable: true });
  return o;
}

function mutate(rand: Rand, c: Record<string, unknown>): unknown {
  const keys = ["op", "path", "items", "cas", "lockId", "now"];
  const out: Record<string, unknown> = { ...c };
  const r = rand();
  if (r < 0.2) delete out[pick(rand, keys)];
  else if (r < 0.45) out[pick(rand, keys)] = pick(rand, BAD_VALUES);
  else if (r < 0.5) out[pick(rand, ["Extra", "Path", "toJSON", "constructor", ""])] = 1;
  else if (r < 0.6) out.op = pick(rand, ["var.delete", "var.lock-renew", "acl.bootstrap", "VAR.PUT", ""]);
  else if (r < 0.7) out.path = pick(rand, ["", "/a", "a/", "a//b", "a b", "ä", "a".repeat(LIMITS.pathMaxChars), "a".repeat(LIMITS.pathMaxChars + 1)]);
  else if (r < 0.8) {
    const items = { ...(c.items as Record<string, string>) };
    items[pick(rand, ["", "toJSON", "constructor", "hasOwnProperty", "a"])] = pick(rand, ["v", "", 1, null, ["x"]] as unknown[]) as string;
    out.items = items;
  } else if (r < 0.9) out.items = pick(rand, [null, [], Object.create(null), withOwnProto({ a: "b" }), new Map([["a", "b"]]), "s", { k: "x".repeat(LIMITS.itemsMaxEncodedBytes) }]);
  else out.cas = pick(rand, [...BAD_VALUES, 0, 7]);
  return out;
}

function agree(c: unknown, counts: { fast: number; zod: number; both: number }): void {
  const fast = fastVarPut(c);
  const z = commandSchema.safeParse(c);
  if (z.success) counts.zod++;
  if (fast === undefined) return;
  counts.fast++;
  if (!z.success) throw new Error(`fastVarPut accepted what zod rejects (${z.error.message}): ${JSON.stringify(c)}`);
  counts.both++;
  expect(fast).toStrictEqual(z.data as typeof fast);
  expect(Object.keys(fast)).toEqual(Object.keys(z.data));
}

describe("fast var.put check", () => {
  test("accepts every valid var.put, with zod's output", () => {
    withSeed("valid puts", (rand) => {
      const counts = { fast: 0, zod: 0, both: 0 };
      for (let i = 0; i < 3000; i++) {
        const c = validPut(rand);
        agree(c, counts);
        agree(decode(encode(c)), counts);
      }
      // Valid by construction but for the odd items map over the size limit: the fast path
      // must take every command zod takes, or it is no fast path.
      expect(counts.zod).toBeGreaterThan(5500);
      expect(counts.fast).toBe(counts.zod);
    });
  });

  test("never accepts a mutated command zod rejects; returns zod's command when both accept", () => {
    withSeed("mutated puts", (rand) => {
      const counts = { fast: 0, zod: 0, both: 0 };
      for (let i = 0; i < 6000; i++) {
        let c = mutate(rand, validPut(rand));
        if (rand() < 0.3) c = mutate(rand, c as Record<string, unknown>);
        agree(c, counts);
        let decoded: unknown;
        try {
          decoded = decode(encode(c));
        } catch {
          continue; // not encodable (bigint, Map...): cannot arrive in a raft entry
        }
        agree(decoded, counts);
      }
      expect(counts.zod).toBeGreaterThan(500);
      expect(counts.zod).toBeLessThan(11000);
      expect(counts.both).toBeGreaterThan(300);
    });
  });

  test("a store applying through the fast path ends as one applying through zod alone", () => {
    withSeed("apply agreement", (rand) => {
      const a = new StateStore();
      const b = new StateStore();
      let fastOk = 0;
      for (let i = 1; i <= 2000; i++) {
        const c = rand() < 0.7 ? validPut(rand) : mutate(rand, validPut(rand));
        // The same command on an object whose prototype is not Object.prototype: the fast path
        // leaves it to zod, which parses it as it does any object.
        const slow = typeof c === "object" && c !== null ? Object.assign(Object.create({}), c) : c;
        expect(fastVarPut(slow)).toBeUndefined();
        if (fastVarPut(c)) fastOk++;
        expect(a.apply(i, c)).toStrictEqual(b.apply(i, slow));
      }
      expect(fastOk).toBeGreaterThan(1000);
      const rows = (s: StateStore) => [...s.view().records()];
      expect(rows(a).length).toBeGreaterThan(300);
      expect(rows(a)).toStrictEqual(rows(b));
    });
  });
});
