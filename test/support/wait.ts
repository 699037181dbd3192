// Waiting for a condition with a deadline: the only way tests wait.
//
// A probe says "not yet" by returning undefined, null or false or by throwing an error that means the thing it
// asks is not reachable yet (a refused or reset connection, a request that timed out, an explicit
// NotYet). Any other error — a failed `expect`, a TypeError from reading a body that is not there —
// ends the wait at once: a probe's assertion must be able to fail the test.

/** Thrown by a probe to say "not yet" with a reason the timeout message will show. */
export class NotYet extends Error {
  override name = "NotYet";
}

/** Socket-level codes of a server that is not (or no longer, or not yet again) reachable. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "ConnectionRefused",
  "ConnectionClosed",
  "FailedToOpenSocket",
]);

/** Whether `e` means "not reachable yet" rather than a wrong answer. */
export function retryable(e: unknown): boolean {
  if (e instanceof NotYet) return true;
  if (!(e instanceof Error)) return false;
  if (e.name === "AbortError" || e.name === "TimeoutError") return true;
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && UNREACHABLE.has(code);
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
  what: string,
  everyMs = 25,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      if (!retryable(e)) throw e;
      lastError = e;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`,
      );
    }
    await Bun.sleep(everyMs);
  }
}
