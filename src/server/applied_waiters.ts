// Callers waiting for this server to apply an index (read barriers, a restore waiting for its entry):
// woken as the applier passes their index, refused all at once when the driver stops or the applier
// stops at an entry this binary does not understand (apply_stop.ts), and forgotten when they give up.
import { withDeadline } from "../lib/deadline.ts";

interface Waiter {
  index: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class AppliedWaiters {
  private waiters: Waiter[] = [];

  /** Resolves at wake(applied >= index). With `timeoutMs`, rejects with TIMEOUT (`what`) after it and forgets the waiter. */
  wait(index: number, timeoutMs: number | undefined, what: string): Promise<void> {
    const w: Waiter = { index, resolve: () => {}, reject: () => {} };
    const reached = new Promise<void>((resolve, reject) => {
      w.resolve = resolve;
      w.reject = reject;
    });
    this.waiters.push(w);
    if (timeoutMs === undefined) return reached;
    return withDeadline(reached, timeoutMs, what).catch((e: unknown) => {
      // Given up: the waiter is forgotten rather than woken later.
      const at = this.waiters.indexOf(w);
      if (at >= 0) this.waiters.splice(at, 1);
      throw e;
    });
  }

  /** How many wait (the driver's tests check that a waiter that gave up is forgotten). */
  get length(): number {
    return this.waiters.length;
  }

  /** Wakes every waiter at or below `applied`. */
  wake(applied: number): void {
    if (this.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.waiters) w.index <= applied ? w.resolve() : keep.push(w);
    this.waiters = keep;
  }

  /** Refuses every waiter with `err`. */
  fail(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
