// Every HTTP connection has a bound, over real sockets: an idle keep-alive connection, a silent one and
// a body that stops mid-way are closed after the idle timeout; a restore upload that stalls is cut by
// the body's own idle bound while blocking queries outlive the idle timeout; a connection without a
// whole request head is closed at the first-request deadline; the per-address cap refuses the N+1th
// open connection at accept (429, connection closed), silent ones included, and counts it, but not
// connections that were closed.
import { afterEach, expect, test } from "bun:test";
import { serveHttp, type HttpServeOptions } from "../../src/http/serve.ts";
import { waitFor } from "../support/wait.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function listen(o: Partial<HttpServeOptions> & Pick<HttpServeOptions, "fetch">) {
  const lines: string[] = [];
  const refused: string[] = [];
  const http = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    maxConnsPerAddress: 100,
    log: (_l, m) => lines.push(m),
    onRefused: (r) => refused.push(r),
    ...o,
  });
  cleanup.push(() => http.stop(true));
  return { http, lines, refused };
}

/** A raw HTTP/1.1 client on one TCP connection. */
async function conn(port: number) {
  const st = { text: "", closed: false, openedAt: performance.now(), closedAt: 0 };
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        st.text += new TextDecoder().decode(d);
      },
      close() {
        st.closed = true;
        st.closedAt = performance.now();
      },
    },
  });
  cleanup.push(() => {
    sock.end();
  });
  const responses = () => st.text.split("HTTP/1.1 ").length - 1;
  return {
    st,
    sock,
    send: (s: string) => sock.write(s),
    /** Send a GET and wait for its response (the n-th on this connection). */
    async get(path: string, timeoutMs = 5_000) {
      const n = responses();
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await waitFor(() => responses() > n && st.text.endsWith("\n"), timeoutMs, `a response to ${path}`);
      return st.text.slice(st.text.lastIndexOf("HTTP/1.1 "));
    },
  };
}

const ok = () => new Response("ok\n");

test("an idle keep-alive connection and a silent one are closed after the idle timeout", async () => {
  const { http } = listen({ fetch: ok, idleTimeoutS: 2 });
  const kept = await conn(http.port);
  expect(await kept.get("/a")).toStartWith("HTTP/1.1 200");
  const silent = await conn(http.port);
  await waitFor(() => kept.st.closed && silent.st.closed, 15_000, "both idle connections to be closed");
  for (const c of [kept, silent]) expect(c.st.closedAt - c.st.openedAt).toBeGreaterThanOrEqual(1_900);
});

test("a body that stops after 10 of 91 bytes is cut after the idle timeout", async () => {
  const { http } = listen({
    idleTimeoutS: 2,
    fetch: async (req) => {
      await req.text();
      return ok();
    },
  });
  const c = await conn(http.port);
  c.send(`PUT /v1/var/a HTTP/1.1\r\nHost: x\r\nContent-Length: 91\r\n\r\n{"Items":{`);
  await waitFor(() => c.st.closed, 15_000, "the stalled upload to be cut");
  expect(c.st.closedAt - c.st.openedAt).toBeGreaterThanOrEqual(1_900);
  expect(c.st.text).not.toContain("200 OK");
});

test("a restore upload keeps its connection past the idle timeout while bytes come, and a stall is cut by the body bound", async () => {
  const results: string[] = [];
  const { http, refused } = listen({
    idleTimeoutS: 2,
    bodyIdleMs: 3_000,
    fetch: async (req) => {
      let n = 0;
      try {
        for await (const chunk of req.body!) n += chunk.length;
        results.push(`read ${n}`);
        return new Response(`got ${n}\n`);
      } catch (e) {
        results.push(`failed after ${n}: ${(e as Error).message}`);
        return new Response("stalled\n", { status: 408 });
      }
    },
  });
  const probe = await conn(http.port); // shows when the idle timeout has passed
  const c = await conn(http.port);
  c.send(`PUT /v1/operator/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`);
  // A byte every 200 ms until the idle timeout has closed the probe: slow, but never idle for the body bound.
  let sent = 0;
  await waitFor(
    () => {
      c.send("x");
      sent++;
      return probe.st.closed;
    },
    20_000,
    "the idle timeout to pass (probe closed)",
    200,
  );
  expect(c.st.closed).toBe(false); // the restore's connection outlives it
  const stalledAt = performance.now();
  await waitFor(() => results.length > 0, 15_000, "the stalled restore body to be cut");
  expect(performance.now() - stalledAt).toBeGreaterThanOrEqual(2_500);
  expect(results[0]).toBe(`failed after ${sent}: request body: no bytes for 3000 ms`);
  expect(refused).toEqual(["body_idle_timeout"]);
});

test("a blocking query outlives the idle timeout", async () => {
  let probeClosed = () => false;
  const { http } = listen({
    idleTimeoutS: 2,
    fetch: async () => {
      await waitFor(() => probeClosed(), 15_000, "the probe to be closed");
      return new Response("changed\n");
    },
  });
  const probe = await conn(http.port);
  probeClosed = () => probe.st.closed;
  const c = await conn(http.port);
  expect(await c.get("/v1/var/a?index=7&wait=5m", 20_000)).toContain("changed");
  expect(c.st.closed).toBe(false);
});

test("the cap counts open connections per address: the N+1th is refused at accept with 429 and closed, a freed one is reused", async () => {
  const { http, refused, lines } = listen({ fetch: ok, maxConnsPerAddress: 3 });
  const held = [await conn(http.port), await conn(http.port), await conn(http.port)];
  for (const h of held) expect(await h.get("/a")).toStartWith("HTTP/1.1 200");
  const extra = await conn(http.port);
  await waitFor(() => extra.st.closed, 5_000, "the refused connection to be closed");
  expect(extra.st.text).toStartWith("HTTP/1.1 429");
  expect(extra.st.text).toContain("Too many connections from 127.0.0.1 (limit 3)");
  // The held connections go on.
  for (const h of held) expect(await h.get("/b")).toStartWith("HTTP/1.1 200");
  expect(refused).toEqual(["conn_limit"]);
  expect(http.refusedCounts()).toEqual({ conn_limit: 1 });
  expect(lines.length).toBe(1);
  // Close one: a new connection is let in.
  held[0]!.sock.end();
  await waitFor(() => held[0]!.st.closed, 5_000, "the freed connection to close");
  const served = await waitFor(
    async () => {
      const next = await conn(http.port);
      await waitFor(() => next.st.closed || performance.now() - next.st.openedAt > 200, 5_000, "a refusal or none");
      return next.st.closed ? undefined : next;
    },
    5_000,
    "a freed slot",
    100,
  );
  expect(await served.get("/d")).toStartWith("HTTP/1.1 200");
});

test("connections that never send a request count: with 3 silent ones open the 4th is refused at once", async () => {
  const { http, refused } = listen({ fetch: ok, maxConnsPerAddress: 3 });
  const silent = [await conn(http.port), await conn(http.port), await conn(http.port)];
  const extra = await conn(http.port);
  await waitFor(() => extra.st.closed, 2_000, "the 4th connection to be refused");
  expect(extra.st.text).toStartWith("HTTP/1.1 429");
  expect(refused).toEqual(["conn_limit"]);
  for (const s of silent) expect(s.st.closed).toBe(false);
});

test("a connection that sends no whole request head is closed at the first-request deadline; one that did is not", async () => {
  const { http } = listen({ fetch: ok, firstRequestMs: 1_000 });
  const served = await conn(http.port);
  expect(await served.get("/a")).toStartWith("HTTP/1.1 200");
  const silent = await conn(http.port);
  const partial = await conn(http.port);
  partial.send("GET /a HTTP/1.1\r\nHost: x\r\n");
  await waitFor(() => silent.st.closed && partial.st.closed, 5_000, "the silent and partial connections to be closed");
  for (const c of [silent, partial]) expect(c.st.closedAt - c.st.openedAt).toBeGreaterThanOrEqual(900);
  expect(served.st.closed).toBe(false);
  expect(await served.get("/b")).toStartWith("HTTP/1.1 200");
});

test("connections a client opened and closed do not count: 20 in turn under a cap of 3 are all served", async () => {
  const { http, refused } = listen({ fetch: ok, maxConnsPerAddress: 3 });
  for (let i = 0; i < 20; i++) {
    const c = await conn(http.port);
    expect(await c.get(`/n${i}`)).toStartWith("HTTP/1.1 200");
    c.sock.end();
    await waitFor(() => c.st.closed, 5_000, "the connection to close");
  }
  expect(refused).toEqual([]);
});
