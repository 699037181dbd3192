// The checker rejects known anomalies, accepts linearizable histories (with indeterminate
// operations), always accepts generated linearizable histories and always rejects stale mutations.
import { describe as group, expect, test } from "bun:test";
import { checkHistory } from "./checker.ts";
import type { OpInput, OpStatus, Operation } from "./history.ts";
import { SeededRandom } from "./seeded_random.ts";

let nextId = 0;
function op(
  process: number,
  input: OpInput,
  invokeAt: number,
  completeAt: number,
  status: OpStatus = "ok",
  output?: string | null,
  key = "k",
): Operation {
  const o: Operation = { id: nextId++, process, key, input, invokeAt, completeAt: status === "info" ? Infinity : completeAt, status };
  if (output !== undefined) o.output = output;
  return o;
}
const W = (v: string | null): OpInput => ({ kind: "write", value: v });
const R: OpInput = { kind: "read" };
const CAS = (expected: string | null, value: string, idx = 0): OpInput => ({ kind: "cas", expected, expectedIndex: idx, value });

group("known histories", () => {
  test("sequential write then read is ok; a read before any write sees absent", () => {
    const r = checkHistory([op(0, R, 0, 1, "ok", null), op(0, W("a"), 2, 3), op(1, R, 4, 5, "ok", "a")]);
    expect(r.verdict).toBe("ok");
  });

  test("stale read: a read after a completed overwrite sees the old value", () => {
    const r = checkHistory([op(0, W("a"), 0, 1), op(0, W("b"), 2, 3), op(1, R, 4, 5, "ok", "a")]);
    expect(r.verdict).toBe("illegal");
    expect(r.keys[0]!.explanation).toContain("read");
  });

  test("concurrent read may see either the old or the new value", () => {
    for (const seen of ["a", "b"]) {
      expect(checkHistory([op(0, W("a"), 0, 1), op(0, W("b"), 2, 10), op(1, R, 3, 5, "ok", seen)]).verdict).toBe("ok");
    }
  });

  test("lost write: an acknowledged write is gone from a later read", () => {
    const r = checkHistory([op(0, W("a"), 0, 1), op(1, W("b"), 2, 3), op(2, R, 4, 5, "ok", "b"), op(2, R, 6, 7, "ok", "a")]);
    expect(r.verdict).toBe("illegal");
  });

  test("a read cannot see a value nobody wrote", () => {
    expect(checkHistory([op(0, W("a"), 0, 1), op(1, R, 2, 3, "ok", "zzz")]).verdict).toBe("illegal");
  });

  test("CAS anomaly: two CAS from the same read value both succeed", () => {
    const r = checkHistory([op(0, W("a"), 0, 1), op(1, CAS("a", "b"), 2, 4), op(2, CAS("a", "c"), 2, 4)]);
    expect(r.verdict).toBe("illegal");
  });

  test("CAS anomaly: a CAS succeeds against a value already overwritten", () => {
    const r = checkHistory([op(0, W("a"), 0, 1), op(0, W("b"), 2, 3), op(1, CAS("a", "c"), 4, 5)]);
    expect(r.verdict).toBe("illegal");
  });

  test("failed CAS has no effect; a successful chain of CAS is ok", () => {
    const r = checkHistory([
      op(0, W("a"), 0, 1),
      op(1, CAS("a", "b"), 2, 4),
      op(2, CAS("a", "c"), 2, 4, "fail"),
      op(2, CAS("b", "d"), 5, 6),
      op(1, R, 7, 8, "ok", "d"),
    ]);
    expect(r.verdict).toBe("ok");
  });

  test("create-only CAS (expected absent)", () => {
    expect(checkHistory([op(0, CAS(null, "a"), 0, 1), op(1, R, 2, 3, "ok", "a")]).verdict).toBe("ok");
    expect(checkHistory([op(0, W("x"), 0, 1), op(0, CAS(null, "a"), 2, 3)]).verdict).toBe("illegal");
  });

  test("an indeterminate write may take effect, late, or not at all", () => {
    // took effect long after its client gave up
    expect(
      checkHistory([op(0, W("a"), 0, 1), op(1, W("b"), 2, 3, "info"), op(2, R, 10, 11, "ok", "a"), op(2, R, 20, 21, "ok", "b")]).verdict,
    ).toBe("ok");
    // never took effect
    expect(checkHistory([op(0, W("a"), 0, 1), op(1, W("b"), 2, 3, "info"), op(2, R, 10, 11, "ok", "a")]).verdict).toBe("ok");
    // but it cannot take effect before it was invoked
    expect(checkHistory([op(0, W("a"), 0, 1), op(2, R, 2, 3, "ok", "b"), op(1, W("b"), 5, 6, "info")]).verdict).toBe("illegal");
    // and it takes effect at most once
    expect(
      checkHistory([op(1, W("b"), 0, 1, "info"), op(2, R, 2, 3, "ok", "b"), op(0, W("a"), 4, 5), op(2, R, 6, 7, "ok", "b")]).verdict,
    ).toBe("illegal");
  });

  test("an indeterminate CAS applies only if its expected value was current", () => {
    expect(checkHistory([op(0, W("a"), 0, 1), op(1, CAS("a", "b"), 2, 3, "info"), op(2, R, 4, 5, "ok", "b")]).verdict).toBe("ok");
    expect(
      checkHistory([op(0, W("a"), 0, 1), op(0, W("x"), 2, 3), op(1, CAS("a", "b"), 4, 5, "info"), op(2, R, 6, 7, "ok", "b")]).verdict,
    ).toBe("illegal");
  });

  test("keys are checked independently", () => {
    const r = checkHistory([
      op(0, W("a"), 0, 1, "ok", undefined, "x"),
      op(1, R, 2, 3, "ok", "a", "x"),
      op(1, R, 2, 3, "ok", null, "y"),
      op(0, W("b"), 0, 1, "ok", undefined, "y"),
      op(1, R, 4, 5, "ok", null, "y"),
    ]);
    expect(r.verdict).toBe("illegal");
    expect(r.keys.find((k) => k.key === "x")!.verdict).toBe("ok");
    expect(r.keys.find((k) => k.key === "y")!.verdict).toBe("illegal");
  });

  test("a search that runs out of time says unknown, not ok", () => {
    // Many mutually concurrent observed indeterminate writes: a large search space.
    const ops: Operation[] = [];
    for (let i = 0; i < 40; i++) ops.push(op(i, W(`v${i}`), 0, 1, "info"));
    for (let i = 0; i < 40; i++) ops.push(op(100 + i, R, 2 + i, 2 + i + 0.5, "ok", `v${(i * 7) % 40}`));
    ops.push(op(200, R, 100, 101, "ok", "never-written"));
    const r = checkHistory(ops, { timeoutMs: 50 });
    expect(r.verdict).toBe("unknown");
    expect(r.keys[0]!.explanation).toContain("time bound");
  });
});

/** A linearizable history: ops linearized at increasing points, with random intervals around them. */
function generate(rng: SeededRandom, count: number, keys: string[]): Operation[] {
  const state = new Map<string, string | null>(keys.map((k) => [k, null]));
  const ops: Operation[] = [];
  let serial = 0;
  for (let k = 0; k < count; k++) {
    const key = rng.pick(keys);
    const lin = k * 10;
    const invokeAt = lin - rng.int(0, 40);
    const completeAt = lin + rng.int(0, 40);
    const cur = state.get(key) ?? null;
    const roll = rng.int(0, 100);
    const proc = rng.int(0, 8);
    if (roll < 40) {
      ops.push({ id: ops.length, process: proc, key, input: R, invokeAt, completeAt, status: "ok", output: cur });
    } else if (roll < 70) {
      const value = `w${serial++}`;
      const info = rng.int(0, 10) === 0;
      const applied = !info || rng.int(0, 2) === 0;
      if (applied) state.set(key, value);
      ops.push({
        id: ops.length,
        process: proc,
        key,
        input: W(value),
        invokeAt,
        completeAt: info ? Infinity : completeAt,
        status: info ? "info" : "ok",
      });
    } else {
      const value = `c${serial++}`;
      const stale = rng.int(0, 4) === 0;
      const expected = stale ? `w${rng.int(0, serial + 1)}-gone` : cur;
      if (expected !== cur) {
        ops.push({ id: ops.length, process: proc, key, input: CAS(expected, value), invokeAt, completeAt, status: "fail" });
        continue;
      }
      const info = rng.int(0, 10) === 0;
      const applied = !info || rng.int(0, 2) === 0;
      if (applied) state.set(key, value);
      ops.push({
        id: ops.length,
        process: proc,
        key,
        input: CAS(expected, value),
        invokeAt,
        completeAt: info ? Infinity : completeAt,
        status: info ? "info" : "ok",
      });
    }
  }
  return ops;
}

/** Makes an observer (ok read or ok CAS) see a value some completed write had already overwritten. */
function mutateStale(rng: SeededRandom, ops: Operation[]): Operation[] | undefined {
  const writes = ops.filter((o) => o.status === "ok" && o.input.kind !== "read");
  const observers = ops.filter((o) => o.status === "ok" && (o.input.kind === "read" || o.input.kind === "cas"));
  // A history with no completed observer has nothing to make stale.
  if (observers.length === 0) return undefined;
  for (let tries = 0; tries < 50; tries++) {
    const obs = rng.pick(observers);
    const candidates = writes.filter(
      (old) =>
        old.key === obs.key && writes.some((w2) => w2.key === obs.key && old.completeAt < w2.invokeAt && w2.completeAt < obs.invokeAt),
    );
    if (candidates.length === 0) continue;
    const old = rng.pick(candidates);
    const v = old.input.kind === "read" ? null : old.input.value;
    return ops.map((o) => {
      if (o !== obs) return o;
      if (o.input.kind === "read") return { ...o, output: v };
      if (o.input.kind === "cas") return { ...o, input: { ...o.input, expected: v } };
      return o;
    });
  }
  return undefined;
}

group("randomized", () => {
  const seed = Number(process.env.CHECKER_SEED ?? Date.now() % 1_000_000);
  const rounds = process.env.EDGENODE_LONG === "1" ? 2000 : 300;

  test(`generated linearizable histories pass, stale mutations fail (seed ${seed})`, () => {
    const rng = new SeededRandom(seed);
    let mutated = 0;
    for (let round = 0; round < rounds; round++) {
      const ops = generate(rng, rng.int(5, 120), ["a", "b", "c"].slice(0, rng.int(1, 4)));
      const good = checkHistory(ops, { timeoutMs: 5000 });
      if (good.verdict !== "ok")
        throw new Error(`seed ${seed} round ${round}: a linearizable history was judged ${good.verdict}: ${JSON.stringify(good.keys)}`);
      const bad = mutateStale(rng, ops);
      if (!bad) continue;
      mutated++;
      const r = checkHistory(bad, { timeoutMs: 5000 });
      if (r.verdict !== "illegal") throw new Error(`seed ${seed} round ${round}: a stale mutation was judged ${r.verdict}`);
    }
    expect(mutated).toBeGreaterThan(rounds / 4);
  });
});
