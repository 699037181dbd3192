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
    const t = deadlineTimer(ms, () => {
      done();
      reject(typeof what === "string" ? new EdgeError("TIMEOUT", what) : what());
    });
    const done = () => {
      t.cancel();
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

/** A deadline with no promise to bound; see deadlineTimer. */
export interface DeadlineTimer {
  /** Stops the deadline; `onExpire` will not run (a no-op once it has). */
  cancel(): void;
}

/**
 * Runs `onExpire` once after `ms` unless cancelled first: for a deadline on something that is not a
 * promise (a connection's silence, a handler's abort signal), whose expiry is an action, not a rejection.
 */
export function deadlineTimer(ms: number, onExpire: () => void, opts: { keepAlive?: boolean } = {}): DeadlineTimer {
  const t = setTimeout(onExpire, ms);
  // A deadline that only lets go of something (a cache) need not keep the process alive.
  if (opts.keepAlive === false) t.unref?.();
  return { cancel: () => clearTimeout(t) };
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
