// Invariant assertions that stay on in production: a broken invariant stops
// the process rather than letting it corrupt replicated state.
import { EdgeError } from "./errors.ts";

export class AssertionError extends EdgeError {
  constructor(message: string) {
    super("ASSERTION_FAILED", `assertion failed: ${message}`);
    this.name = "AssertionError";
  }
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === "function" ? message() : message);
  }
}

/** Indexes and terms are plain numbers; they must stay exact integers. */
export function assertIndex(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new AssertionError(`${what} must be a non-negative safe integer, got ${n}`);
  }
}

export function unreachable(x: never, what = "value"): never {
  throw new AssertionError(`unreachable ${what}: ${JSON.stringify(x)}`);
}
