// Proposals waiting for their entry to apply: each settles with the apply's result, or fails when
// leadership changed first or its deadline passed. One timer sweeps the deadlines of them all, so a
// write costs no timer of its own.
import { deadlineTimer, type DeadlineTimer } from "../lib/deadline.ts";
import { EdgeError } from "../lib/errors.ts";

interface Pending {
  term: number;
  /** performance.now() after which nobody waits for the result. */
  expires: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Deadlines this close together are swept by one timer firing (a deadline may pass this late). */
const SWEEP_SLACK_MS = 10;

export class Proposals {
  private readonly pending = new Map<number, Pending>();
  private timer: DeadlineTimer | undefined;
  /** When the armed timer fires (performance.now()). */
  private sweepAt = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.pending.size;
  }

  /**
   * Waits for the entry proposed at `index` in `term` to apply. After `timeoutMs` it rejects with
   * TIMEOUT: the entry may still commit, but nobody waits for its result.
   */
  add(index: number, term: number, timeoutMs: number): Promise<unknown> {
    // One of an earlier term at this index: its entry was cut from this leader's log, so it can never commit.
    this.pending.get(index)?.reject(new EdgeError("UNAVAILABLE", "leadership lost before the write committed; it was not applied"));
    const p: Pending = { term, expires: performance.now() + timeoutMs, resolve: () => {}, reject: () => {} };
    const applied = new Promise<unknown>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    this.pending.set(index, p);
    if (p.expires + SWEEP_SLACK_MS < this.sweepAt) this.arm(p.expires);
    return applied;
  }

  /** The entry at `index` of `term` applied with `result` (or failed with `error`). */
  settle(index: number, term: number, result: unknown, error: unknown): void {
    const p = this.pending.get(index);
    if (!p) return;
    this.pending.delete(index);
    if (p.term !== term) p.reject(new EdgeError("UNAVAILABLE", "leadership lost before the write committed; it was not applied"));
    else if (error !== undefined) p.reject(error);
    else p.resolve(result);
  }

  /** Every waiting proposal fails with `err` (the driver stopped). */
  failAll(err: Error): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.sweepAt = Number.POSITIVE_INFINITY;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.sweepAt = at + SWEEP_SLACK_MS;
    this.timer = deadlineTimer(Math.max(0, this.sweepAt - performance.now()), () => this.sweep());
  }

  private sweep(): void {
    this.timer = undefined;
    this.sweepAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [index, p] of this.pending) {
      if (p.expires <= now) {
        this.pending.delete(index);
        p.reject(new EdgeError("TIMEOUT", `timed out waiting for index ${index} to commit; the outcome is unknown`));
      } else if (p.expires < next) {
        next = p.expires;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
}
