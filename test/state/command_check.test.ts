// The apply fast path must agree with zod: fastVarPut accepts only var.put commands
// that commandSchema accepts, returning the same command (keys in the same order),
// and leaves everything else to zod. Randomized over valid and mutated commands, seeded.
import { describe, expect, test } from "bun:test";
import { fastVarPut } from "../../src/state/command_check.ts";
import { commandSchema } from "../../src/state/commands.ts";
import { StateStore } from "../../src/state/state_store.ts";
import { LIMITS } from "../../src/state/tables.ts";
import { agreeOn, agreementTests, int, pick, randomPath, withOwnProto, type Rand } from "./fast_path_agreement.ts";
import { withSeed } from "./seeded_random.ts";

function randomItems(rand: Rand): Record<string, string> {
  const items: Record<string, string> = {};
  const n = pick(rand, [0, 1, 1, 2, 3, 30]);
  for (let i = 0; i < n; i++)
    items[rand() < 0.2 ? String(int(rand, 0, 99)) : `k${int(rand, 0, 999)}é`.slice(0, int(rand, 1, 5))] = "v".repeat(
      pick(rand, [0, 1, 23, 24, 255, 256, 5000]),
    );
  return items;
}

function validPut(rand: Rand): Record<string, unknown> {
  const c: Record<string, unknown> = {
    op: "var.put",
    path: randomPath(rand),
    items: randomItems(rand),
    now: pick(rand, [0, 1_700_000_000_000, Number.MAX_SAFE_INTEGER]),
  };
  if (rand() < 0.4) c.cas = pick(rand, [0, 1, 12345, Number.MAX_SAFE_INTEGER]);
  if (rand() < 0.4) c.lockId = pick(rand, ["L1", "a-b-c", "a".repeat(LIMITS.idMaxChars)]);
  // zod's output order is the schema's; shuffle the input's to show it does not matter.
  return Object.fromEntries(Object.entries(c).sort(() => rand() - 0.5));
}

const BAD_VALUES: unknown[] = [
  undefined,
  null,
  true,
  "1",
  -1,
  -0,
  0.5,
  NaN,
  Infinity,
  2 ** 53,
  1e21,
  [],
  {},
  [1],
  { a: 1 },
  "",
  "x",
  "a_b",
  "a".repeat(LIMITS.idMaxChars + 1),
  123n,
];

function mutate(rand: Rand, c: Record<string, unknown>): unknown {
  const keys = ["op", "path", "items", "cas", "lockId", "now"];
  const out: Record<string, unknown> = { ...c };
  const r = rand();
  if (r < 0.2) delete out[pick(rand, keys)];
  else if (r < 0.45) out[pick(rand, keys)] = pick(rand, BAD_VALUES);
  else if (r < 0.5) out[pick(rand, ["Extra", "Path", "toJSON", "constructor", ""])] = 1;
  else if (r < 0.6) out.op = pick(rand, ["var.delete", "var.lock-renew", "acl.bootstrap", "VAR.PUT", ""]);
  else if (r < 0.7)
    out.path = pick(rand, ["", "/a", "a/", "a//b", "a b", "ä", "a".repeat(LIMITS.pathMaxChars), "a".repeat(LIMITS.pathMaxChars + 1)]);
  else if (r < 0.8) {
    const items = { ...(c.items as Record<string, string>) };
    items[pick(rand, ["", "toJSON", "constructor", "hasOwnProperty", "a"])] = pick(rand, ["v", "", 1, null, ["x"]] as unknown[]) as string;
    out.items = items;
  } else if (r < 0.9)
    out.items = pick(rand, [
      null,
      [],
      Object.create(null),
      withOwnProto({ a: "b" }),
      new Map([["a", "b"]]),
      "s",
      { k: "x".repeat(LIMITS.itemsMaxEncodedBytes) },
    ]);
  else out.cas = pick(rand, [...BAD_VALUES, 0, 7]);
  return out;
}

const agree = agreeOn("fastVarPut", fastVarPut, (c) => commandSchema.safeParse(c));

describe("fast var.put check", () => {
  agreementTests("var.put", agree, validPut, (rand, c) => mutate(rand, c as Record<string, unknown>));

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
