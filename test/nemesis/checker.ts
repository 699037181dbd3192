// Linearizability checker for variable histories: Wing–Gong–Lowe search with Lowe's memoization, as
// Porcupine does it (linearize each operation as early as possible, backtrack, cache the pairs of
// linearized-set and state already seen), partitioned per key (P-compositionality). A search that
// runs out of time reports "unknown", never "ok".
import { Bitset } from "./bitset.ts";
import type { Operation } from "./history.ts";
import { describe, INITIAL_STATE, step, stateKey, type RegisterState } from "./register_model.ts";

export type Verdict = "ok" | "illegal" | "unknown";

export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** Operations the search considered (after dropping fails and indeterminate reads). */
  operations: number;
  /** Search steps taken. */
  steps: number;
  /** When illegal: the deepest point the search reached, for a human to read. */
  explanation?: string;
}

export interface CheckResult {
  verdict: Verdict;
  keys: KeyResult[];
}

export interface CheckOptions {
  /** Bound on the whole check; keys left when it passes are "unknown". Default 60 s. */
  timeoutMs?: number;
  /** Initial state of every key. Default: absent. */
  initial?: RegisterState;
}

const MAX_OPERATIONS_PER_KEY = 200_000;

/** Checks every key's sub-history; the history is linearizable iff every key's is. */
export function checkHistory(ops: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const deadline = performance.now() + (options.timeoutMs ?? 60_000);
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    const l = byKey.get(op.key);
    if (l) l.push(op);
    else byKey.set(op.key, [op]);
  }
  const keys: KeyResult[] = [];
  for (const [key, list] of [...byKey].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    keys.push(checkKey(key, list, deadline, options.initial ?? INITIAL_STATE));
  }
  const verdict: Verdict = keys.some((k) => k.verdict === "illegal")
    ? "illegal"
    : keys.some((k) => k.verdict === "unknown")
      ? "unknown"
      : "ok";
  return { verdict, keys };
}

/**
 * Drops what cannot constrain the search: failed operations (no effect), indeterminate reads, and
 * indeterminate writes whose value nobody ever observed (if such a write took effect, something
 * overwrote it before anyone looked, so leaving it out changes no verdict).
 */
export function relevantOperations(ops: readonly Operation[]): Operation[] {
  const observed = new Set<string>();
  for (const o of ops) {
    if (o.input.kind === "read" && o.status === "ok" && o.output !== undefined && o.output !== null) observed.add(o.output);
    if (o.input.kind === "cas" && o.status !== "fail" && o.input.expected !== null) observed.add(o.input.expected);
  }
  return ops
    .filter((o) => {
      if (o.status === "fail") return false;
      if (o.status === "info" || o.status === "pending") {
        if (o.input.kind === "read") return false;
        const v = o.input.value;
        if (v !== null && !observed.has(v)) return false;
      }
      return true;
    })
    .map((o) => (o.status === "pending" || o.status === "info" ? { ...o, status: "info" as const, completeAt: Infinity } : o));
}

export function checkKey(key: string, all: readonly Operation[], deadline: number, initial: RegisterState): KeyResult {
  const ops = relevantOperations(all);
  const n = ops.length;
  if (n > MAX_OPERATIONS_PER_KEY)
    return { key, verdict: "unknown", operations: n, steps: 0, explanation: `more than ${MAX_OPERATIONS_PER_KEY} operations` };
  for (const o of ops) {
    if (!(o.completeAt >= o.invokeAt)) throw new Error(`operation completes before it is invoked: ${describe(o)}`);
  }
  // Entries: 2i is op i's call, 2i+1 its return; HEAD (2n) is the list's sentinel.
  const HEAD = 2 * n;
  const order = Array.from({ length: 2 * n }, (_, e) => e).sort((a, b) => {
    const ta = time(ops, a);
    const tb = time(ops, b);
    if (ta !== tb) return ta - tb;
    return (a & 1) - (b & 1); // calls before returns at equal times: treat them as overlapping
  });
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = HEAD;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  const lift = (e: number) => {
    const m = e + 1;
    next[prev[e]!] = next[e]!;
    if (next[e]! >= 0) prev[next[e]!] = prev[e]!;
    next[prev[m]!] = next[m]!;
    if (next[m]! >= 0) prev[next[m]!] = prev[m]!;
  };
  const unlift = (e: number) => {
    const m = e + 1;
    next[prev[m]!] = m;
    if (next[m]! >= 0) prev[next[m]!] = m;
    next[prev[e]!] = e;
    if (next[e]! >= 0) prev[next[e]!] = e;
  };

  const linearized = new Bitset(n);
  const cache = new Set<string>();
  const stack: { entry: number; state: RegisterState; alt: number }[] = [];
  let state = initial;
  let entry = next[HEAD]!;
  let alt = 0;
  let steps = 0;
  let deepest = -1;
  let stuckAt = -1;
  let stuckState: RegisterState = initial;
  while (next[HEAD]! >= 0) {
    if (++steps % 4096 === 0 && performance.now() > deadline) {
      return {
        key,
        verdict: "unknown",
        operations: n,
        steps,
        explanation: `search stopped at its time bound after ${steps} steps (${stack.length}/${n} linearized)`,
      };
    }
    if (entry < 0) throw new Error("checker: ran off the end of the entry list"); // a return always comes first
    const i = entry >> 1;
    if ((entry & 1) === 0) {
      const op = ops[i]!;
      const outcomes = step(state, op);
      let moved = false;
      for (let k = alt; k < outcomes.length; k++) {
        const s = outcomes[k]!;
        linearized.set(i);
        const ck = `${linearized.key()}\u0000${stateKey(s)}`;
        if (!cache.has(ck)) {
          cache.add(ck);
          stack.push({ entry, state, alt: k });
          state = s;
          lift(entry);
          entry = next[HEAD]!;
          alt = 0;
          moved = true;
          break;
        }
        linearized.clear(i);
      }
      if (!moved) {
        entry = next[entry]!;
        alt = 0;
      }
    } else {
      // A return: the operation that returns here was not linearized before it; undo the last choice.
      if (stack.length > deepest) {
        deepest = stack.length;
        stuckAt = i;
        stuckState = state;
      }
      const top = stack.pop();
      if (!top) {
        const stuck = ops[stuckAt];
        return {
          key,
          verdict: "illegal",
          operations: n,
          steps,
          explanation: stuck
            ? `after linearizing ${deepest} of ${n} operations (state ${JSON.stringify(stuckState)}), no order lets this one complete: ${describe(stuck)}`
            : "no linearization",
        };
      }
      linearized.clear(top.entry >> 1);
      unlift(top.entry);
      state = top.state;
      entry = top.entry;
      alt = top.alt + 1;
    }
  }
  return { key, verdict: "ok", operations: n, steps };
}

function time(ops: readonly Operation[], e: number): number {
  const o = ops[e >> 1]!;
  return (e & 1) === 0 ? o.invokeAt : o.completeAt;
}
