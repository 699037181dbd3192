// Shared by the tests of the hand-written fast checks in front of zod (variable_check.test.ts,
// command_check.test.ts): random-value helpers, and the two agreement tests every fast check must
// pass — it takes every valid value zod takes, with zod's output, and never one zod refuses.
import { expect, test } from "bun:test";
import { decode, encode } from "../../src/lib/codec.ts";
import { withSeed } from "./seeded_random.ts";

export type Rand = () => number;
export const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
export const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

const PATH_CHARS = "abcXYZ019-_~/";
export function randomPath(rand: Rand): string {
  const len = int(rand, 1, 40);
  let p = "p";
  while (p.length < len) p += pick(rand, [...PATH_CHARS]);
  return p.endsWith("/") ? `${p}x` : p.replaceAll("//", "/a");
}

/** An object with an own, enumerable "__proto__" key (what a JSON or CBOR decoder can produce). */
export function withOwnProto<T extends object>(o: T): T {
  Object.defineProperty(o, "__proto__", { value: "x", enumerable: true, configurable: true, writable: true });
  return o;
}

export interface Counts {
  fast: number;
  zod: number;
  both: number;
  checks: number;
}

type ZodResult = { success: true; data: unknown } | { success: false; error: { message: string } };

/**
 * Compare one value through the fast check and through zod: the fast check may say "not sure"
 * (undefined), but what it accepts zod must accept, with the same output and key order.
 */
export function agreeOn(
  name: string,
  fast: (v: unknown) => object | undefined,
  zod: (v: unknown) => ZodResult,
  extra?: (fast: object, zod: unknown) => void,
) {
  return (v: unknown, counts: Counts): void => {
    counts.checks++;
    const f = fast(v);
    const z = zod(v);
    if (z.success) counts.zod++;
    if (f === undefined) return;
    counts.fast++;
    if (!z.success) throw new Error(`${name} accepted what zod rejects (${z.error.message}): ${JSON.stringify(v)}`);
    counts.both++;
    expect(f).toStrictEqual(z.data as typeof f);
    expect(Object.keys(f)).toEqual(Object.keys(z.data as object));
    extra?.(f, z.data);
  };
}

/** The two agreement tests, over `valid` values (and their CBOR round trips) and `mutate`d ones. */
export function agreementTests(
  what: string,
  agree: (v: unknown, counts: Counts) => void,
  valid: (rand: Rand) => unknown,
  mutate: (rand: Rand, v: unknown) => unknown,
): void {
  test(`accepts every valid ${what}, with zod's output`, () => {
    withSeed(`valid ${what}`, (rand) => {
      const counts: Counts = { fast: 0, zod: 0, both: 0, checks: 0 };
      for (let i = 0; i < 3000; i++) {
        const v = valid(rand);
        agree(v, counts);
        agree(decode(encode(v)), counts);
      }
      // Valid by construction but for the odd items map over the size limit: the fast path
      // must take every value zod takes, or it is no fast path.
      expect(counts.zod).toBeGreaterThan(5500);
      expect(counts.fast).toBe(counts.zod);
    });
  });

  test(`never accepts a mutated ${what} zod rejects; returns zod's when both accept`, () => {
    withSeed(`mutated ${what}`, (rand) => {
      const counts: Counts = { fast: 0, zod: 0, both: 0, checks: 0 };
      for (let i = 0; i < 6000; i++) {
        let v = mutate(rand, valid(rand));
        if (rand() < 0.3) v = mutate(rand, v);
        agree(v, counts);
        let decoded: unknown;
        try {
          decoded = decode(encode(v));
        } catch {
          continue; // not encodable (bigint, Map...): cannot arrive from a snapshot or a raft entry
        }
        agree(decoded, counts);
      }
      // Both outcomes occur, so the comparison has teeth either way.
      expect(counts.zod).toBeGreaterThan(500);
      expect(counts.zod).toBeLessThan(counts.checks * 0.95);
      expect(counts.both).toBeGreaterThan(300);
    });
  });
}
