// waitFor: "not yet" is a falsy answer or an unreachable server; anything else a probe throws, a failed
// expect above all, ends the wait at once.
import { expect, test } from "bun:test";
import { NotYet, retryable, waitFor } from "./wait.ts";

test("a failed expect inside a probe fails at once, not at the deadline", async () => {
  let calls = 0;
  const e = await waitFor(
    () => {
      calls++;
      expect(calls).toBe(0);
      return true;
    },
    10_000,
    "never",
  ).catch((x: unknown) => x);
  expect(calls).toBe(1); // not retried until the 10 s deadline
  expect((e as Error).message).toContain("expect(received).toBe(expected)");
});

test("any other error (a TypeError from a missing body) propagates too", async () => {
  const e = await waitFor(() => (undefined as unknown as { x: number }).x > 0, 10_000, "never").catch((x: unknown) => x);
  expect(e).toBeInstanceOf(TypeError);
});

test("a refused connection, a timed-out request and NotYet are retried until the probe answers", async () => {
  const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = closed.port;
  closed.stop(true);
  let n = 0;
  const v = await waitFor(
    async () => {
      n++;
      if (n === 1) await fetch(`http://127.0.0.1:${port}/`); // ECONNREFUSED
      if (n === 2) throw new DOMException("timed out", "TimeoutError");
      if (n === 3) throw new NotYet("not there yet");
      return n === 4 ? "answer" : undefined;
    },
    10_000,
    "the answer",
    1,
  );
  expect([v, n]).toEqual(["answer", 4]);
});

test("the deadline names what was awaited and the last not-yet reason", async () => {
  const e = await waitFor(
    () => {
      throw new NotYet("still starting");
    },
    50,
    "the thing",
    5,
  ).catch((x: unknown) => x);
  expect((e as Error).message).toMatch(/^timed out after 50 ms waiting for the thing \(last error: still starting\)$/);
});

test("retryable: network codes and abort/timeout names only", () => {
  expect(retryable(Object.assign(new TypeError("x"), { code: "ECONNRESET" }))).toBe(true);
  expect(retryable(new TypeError("undefined is not an object"))).toBe(false);
  expect(retryable(new Error("expect(received).toBe(expected)"))).toBe(false);
  expect(retryable("a string")).toBe(false);
});
