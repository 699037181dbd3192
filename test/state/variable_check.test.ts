// The restore fast path must agree with zod: fastVariable accepts only rows that
// variableSchema accepts, returning the same row, and encodedItemsSize is exactly
// the codec's encoded length. Randomized over valid and mutated records, seeded.
import { describe, expect, test } from "bun:test";
import { encode } from "../../src/lib/codec.ts";
import { restoreTables } from "../../src/state/restore.ts";
import { LIMITS, variableSchema } from "../../src/state/tables.ts";
import { encodedItemsSize, fastVariable } from "../../src/state/variable_check.ts";
import { agreeOn, agreementTests, int, pick, randomPath, withOwnProto, type Rand } from "./fast_path_agreement.ts";
import { withSeed, withSeedAsync } from "./seeded_random.ts";

/** Strings that exercise UTF-8 widths and CBOR head sizes: ASCII, 2-, 3- and 4-byte, lone surrogates. */
function randomString(rand: Rand, maxLen: number): string {
  const len = pick(rand, [0, 1, 5, 22, 23, 24, 25, 63, 64, 65, 200, 254, 255, 256, 1000, maxLen]);
  let s = "";
  const kind = rand();
  while (s.length < Math.min(len, maxLen)) {
    const r = kind < 0.5 ? 0 : rand();
    if (r < 0.7) s += String.fromCharCode(int(rand, 0x20, 0x7e));
    else if (r < 0.8) s += "é";
    else if (r < 0.88) s += "✓";
    else if (r < 0.94) s += "😀";
    else if (r < 0.97) s += "\ud800";
    else s += "\udc00";
  }
  return s;
}

function randomItems(rand: Rand): Record<string, string> {
  const items: Record<string, string> = {};
  const n = pick(rand, [0, 1, 1, 2, 3, 30]);
  for (let i = 0; i < n; i++) {
    const k = rand() < 0.2 ? String(int(rand, 0, 99)) : randomString(rand, 40) || "k";
    items[k] = randomString(rand, 2000);
  }
  return items;
}

function validVariable(rand: Rand): Record<string, unknown> {
  const create = int(rand, 0, 1e6);
  const v: Record<string, unknown> = {
    Path: randomPath(rand),
    Items: randomItems(rand),
    CreateIndex: create,
    ModifyIndex: create + int(rand, 0, 10),
    CreateTime: pick(rand, [0, 1_700_000_000_000, Number.MAX_SAFE_INTEGER]),
    ModifyTime: 1_700_000_000_001,
  };
  if (rand() < 0.3)
    v.Lock = {
      ID: `L${int(rand, 0, 999)}`,
      TTL: pick(rand, [LIMITS.lockTtlMinMs, 15_000, LIMITS.lockTtlMaxMs]),
      LockDelay: pick(rand, [0, 15_000, LIMITS.lockDelayMaxMs]),
    };
  if (rand() < 0.3) v.LockDelayUntil = int(rand, 0, 2e12);
  // zod's output order is the schema's; shuffle the input's to show it does not matter.
  const entries = Object.entries(v).sort(() => rand() - 0.5);
  return Object.fromEntries(entries);
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
  -Infinity,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  1e21,
  [],
  {},
  [1],
  { a: 1 },
  "",
  "x",
  LIMITS.lockTtlMinMs - 1,
  LIMITS.lockTtlMaxMs + 1,
  LIMITS.lockDelayMaxMs + 1,
  123n,
];

/** One random change that may or may not make the row invalid. */
function mutate(rand: Rand, v: Record<string, unknown>): unknown {
  const keys = ["Path", "Items", "Lock", "LockDelayUntil", "CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime"];
  const r = rand();
  const out: Record<string, unknown> = { ...v };
  const items = { ...(v.Items as Record<string, string>) };
  if (r < 0.15) delete out[pick(rand, keys)];
  else if (r < 0.3) out[pick(rand, keys)] = pick(rand, BAD_VALUES);
  else if (r < 0.35) out[pick(rand, ["Extra", "path", "toJSON", "constructor", ""])] = 1;
  else if (r < 0.45)
    out.Path = pick(rand, [
      "",
      "/a",
      "a/",
      "a//b",
      "a b",
      "ä",
      "a".repeat(LIMITS.pathMaxChars),
      "a".repeat(LIMITS.pathMaxChars + 1),
      "a.b",
      "~-_/x",
    ]);
  else if (r < 0.55) {
    const k = pick(rand, ["", "toJSON", "constructor", "hasOwnProperty", "valueOf", "a", "1"]);
    items[k] = pick(rand, ["v", "", 1, null, ["x"], { x: "y" }] as unknown[]) as string;
    out.Items = items;
  } else if (r < 0.6)
    out.Items = pick(rand, [
      null,
      [],
      ["a"],
      Object.create(null),
      Object.assign(Object.create(null), { a: "b" }),
      withOwnProto({ a: "b" }),
      new Map([["a", "b"]]),
      "s",
      1,
    ]);
  else if (r < 0.7) {
    // Items right at the encoded-size limit, either side of it.
    const base = encode({ k: "" }).length;
    const want = LIMITS.itemsMaxEncodedBytes + int(rand, -2, 2);
    let body = "x".repeat(want - base - 3); // a 64 KiB string has a 3-byte head (vs 1 for "")
    if (rand() < 0.5) body = `é${body.slice(2)}`;
    out.Items = { k: body };
  } else if (r < 0.8) {
    const lock: Record<string, unknown> = { ID: "L1", TTL: 5000, LockDelay: 0, ...(v.Lock as object | undefined) };
    const f = pick(rand, ["ID", "TTL", "LockDelay", "Extra"]);
    if (rand() < 0.3) delete lock[f];
    else lock[f] = pick(rand, [...BAD_VALUES, "L-2", "a".repeat(LIMITS.idMaxChars), "a".repeat(LIMITS.idMaxChars + 1), "a_b"]);
    out.Lock = rand() < 0.7 ? lock : pick(rand, [undefined, null, [], Object.assign(Object.create(null), lock)]);
  } else if (r < 0.9) {
    out.CreateIndex = int(rand, 0, 20);
    out.ModifyIndex = int(rand, 0, 20);
  } else out.LockDelayUntil = pick(rand, [...BAD_VALUES, 0, 5]);
  return out;
}

const agree = agreeOn(
  "fastVariable",
  fastVariable,
  (v) => variableSchema.safeParse(v),
  (fast, zod) => {
    const lock = (fast as { Lock?: object }).Lock;
    if (lock !== undefined) expect(Object.keys(lock)).toEqual(Object.keys((zod as { Lock: object }).Lock));
  },
);

describe("fast variable check", () => {
  test("encodedItemsSize is the codec's encoded length", () => {
    withSeed("encodedItemsSize", (rand) => {
      for (let i = 0; i < 3000; i++) {
        const items = randomItems(rand);
        expect(encodedItemsSize(items)).toBe(encode(items).length);
      }
      const many: Record<string, string> = {};
      for (let i = 0; i < 70_000; i++) many[`k${i}`] = "";
      expect(encodedItemsSize(many)).toBe(encode(many).length);
      expect(encodedItemsSize({ k: "x".repeat(70_000) })).toBe(encode({ k: "x".repeat(70_000) }).length);
    });
  });

  test("a row whose keys are zod's, in zod's order, is returned as is; any other order is copied into zod's", () => {
    const row = { Path: "a/b", Items: { k: "v" }, CreateIndex: 1, ModifyIndex: 2, CreateTime: 3, ModifyTime: 4 };
    expect(fastVariable(row)).toBe(row);
    const shuffled = { Items: { k: "v" }, Path: "a/b", CreateIndex: 1, ModifyIndex: 2, CreateTime: 3, ModifyTime: 4 };
    const out = fastVariable(shuffled);
    expect(out).not.toBe(shuffled);
    expect(Object.keys(out as object)).toEqual(Object.keys(variableSchema.parse(shuffled)));
    expect(Object.keys(out as object)).toEqual(Object.keys(row));
  });

  agreementTests("row", agree, validVariable, (rand, v) => mutate(rand, v as Record<string, unknown>));

  test("every field of a row and of its lock set to every edge value", () => {
    const counts = { fast: 0, zod: 0, both: 0, checks: 0 };
    const row = {
      Path: "a/b",
      Items: { k: "v" },
      Lock: { ID: "L1", TTL: 5000, LockDelay: 0 },
      LockDelayUntil: 5,
      CreateIndex: 3,
      ModifyIndex: 4,
      CreateTime: 1,
      ModifyTime: 2,
    };
    const edges = [
      ...BAD_VALUES,
      0,
      3,
      4,
      5,
      LIMITS.lockTtlMinMs,
      LIMITS.lockTtlMaxMs,
      LIMITS.lockDelayMaxMs,
      "L-2",
      "a".repeat(LIMITS.idMaxChars),
      "a".repeat(LIMITS.idMaxChars + 1),
    ];
    for (const f of Object.keys(row)) {
      for (const x of edges) agree({ ...row, [f]: x }, counts);
      const { [f as keyof typeof row]: _, ...without } = row;
      agree(without, counts);
    }
    for (const f of Object.keys(row.Lock)) {
      for (const x of edges) agree({ ...row, Lock: { ...row.Lock, [f]: x } }, counts);
      const { [f as keyof typeof row.Lock]: _, ...without } = row.Lock;
      agree({ ...row, Lock: without }, counts);
    }
    expect(counts.both).toBeGreaterThan(20);
  });

  test("restore with the fast check gives the zod-only restore's tables or its exact error", async () => {
    await withSeedAsync("restore agreement", async (rand) => {
      for (let round = 0; round < 60; round++) {
        const recs: unknown[] = [];
        const n = int(rand, 1, 40);
        const seen = new Set<string>();
        for (let i = 0; i < n; i++) {
          const v = validVariable(rand);
          if (seen.has(v.Path as string)) continue;
          seen.add(v.Path as string);
          recs.push({ t: "vars", v: round % 2 === 0 && i === n - 1 ? mutate(rand, v) : v });
        }
        const run = (zodOnly: boolean) =>
          restoreTables(recs, 100, { zodOnly }).then(
            (t) => ({ ok: true as const, vars: t.vars, locks: t.locks }),
            (e: unknown) => ({ ok: false as const, message: e instanceof Error ? e.message : String(e) }),
          );
        expect(await run(false)).toStrictEqual(await run(true));
      }
    });
  });
});
