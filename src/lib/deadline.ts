// Bounding a wait by a deadline: the one place every layer above lib starts a timeout, so each
// timer is cleared when the wait ends and a caller never races a promise against setTimeout by hand.
import { EdgeError } from "./errors.ts";

export interface DeadlineOptions {
  /** Rejects with `cancelled()` as soon as this aborts (at once when it already has). */
  signal?: AbortSignal | undefined;
  cancelled?: () => Error;
}

/**
 * Resolves or rejects like `p`, or rejects after `ms` with a TIMEOUT EdgeError saying `what`
 * (or with what `what()` makes, when a layer has its own error for it).
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string | (() => Error), opts: DeadlineOptions = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal } = opts;
    const cancelled = () => (opts.cancelled ? opts.cancelled() : new EdgeError("CANCELLED", "cancelled"));
    const onAbort = () => {
      done();
      reject(cancelled());
    };
    const t = setTimeout(() => {
      done();
      reject(typeof what === "string" ? new EdgeError("TIMEOUT", what) : what());
    }, ms);
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        done();
        resolve(v);
      },
      (e: unknown) => {
        done();
        reject(e);
      },
    );
  });
}

/** Waits for `p` to settle, at most `ms`: true when it did (its rejection passes on), false when time ran out. */
export function settlesWithin(p: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  const out = withDeadline(
    Promise.resolve(p).then(() => true),
    ms,
    () => new OutOfTime(),
  );
  return out.catch((e: unknown) => {
    if (e instanceof OutOfTime) return false;
    throw e;
  });
}

/** Private marker of settlesWithin's own deadline, so a TIMEOUT thrown by `p` itself still passes on. */
class OutOfTime extends Error {}

/** Checks `done()` every `everyMs` until it holds (true) or `ms` pass (false). For state no event announces. */
export async function pollUntil(done: () => boolean, ms: number, everyMs = 10): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (done()) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise((r) => setTimeout(r, Math.min(everyMs, left)));
  }
}
