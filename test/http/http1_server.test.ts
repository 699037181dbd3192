// The HTTP/1.1 server over real sockets, byte by byte: pipelined requests answered in order, chunked and
// Content-Length bodies streamed to the handler with backpressure, 100-continue sent when the handler
// reads, every framing two parsers could read differently refused with 400 and the connection closed,
// an oversized head refused with 431, HEAD without a body, HTTP/1.0 and `Connection: close`, streamed
// responses chunked, and a client that goes away aborting `req.signal`.
import { afterEach, expect, test } from "bun:test";
import { type Exchange, type Http1Hooks, listenHttp1 } from "../../src/http/http1_server.ts";
import { waitFor } from "../support/wait.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function listen(fetch: (req: Request, ex: Exchange) => Response | Promise<Response>, more: Partial<Http1Hooks> = {}) {
  const srv = listenHttp1(
    { hostname: "127.0.0.1", port: 0, firstRequestMs: 10_000, idleTimeoutS: 30, maxHeadBytes: 8 * 1024 },
    { admit: () => undefined, closed: () => {}, fetch, ...more },
  );
  cleanup.push(() => srv.stop(true));
  return srv;
}

/** A raw client on one TCP connection. */
async function conn(port: number) {
  const st = { bytes: Buffer.alloc(0), closed: false };
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        st.bytes = Buffer.concat([st.bytes, d]);
      },
      close() {
        st.closed = true;
      },
    },
  });
  cleanup.push(() => {
    sock.end();
  });
  const text = () => st.bytes.toString("latin1");
  return {
    st,
    sock,
    text,
    send: (s: string | Uint8Array) => sock.write(s),
    until: (pred: (t: string) => boolean, what: string) => waitFor(() => pred(text()), 5_000, what),
  };
}

const echo = async (req: Request) =>
  new Response(`${req.method} ${new URL(req.url).pathname} ${req.body ? await req.text() : "-"}`, {
    headers: { "content-type": "text/plain" },
  });

test("pipelined requests are answered in order, the first slow", async () => {
  const srv = listen(async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/slow") await Bun.sleep(200);
    return new Response(path);
  });
  const c = await conn(srv.port);
  c.send(
    "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  await c.until((t) => t.split("HTTP/1.1 200").length === 4 && t.endsWith("/c"), "three responses");
  const bodies = c
    .text()
    .split("HTTP/1.1 200 OK\r\n")
    .slice(1)
    .map((r) => r.slice(r.indexOf("\r\n\r\n") + 4));
  expect(bodies).toEqual(["/slow", "/b", "/c"]);
  expect(c.text()).toContain("content-length: 5\r\n");
  expect(c.text()).toContain("date: ");
  expect(c.st.closed).toBe(false);
});

test("a chunked body arrives whole, split anywhere across writes, with extensions and trailers", async () => {
  const srv = listen(echo);
  const c = await conn(srv.port);
  const wire =
    "PUT /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n";
  for (let i = 0; i < wire.length; i += 7) {
    c.send(wire.slice(i, i + 7));
    await Bun.sleep(1);
  }
  await c.until((t) => t.endsWith("PUT /v hello 0123456789"), "the echoed body");
  // The connection goes on after the trailer.
  c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  await c.until((t) => t.endsWith("GET /next -"), "the next response");
});

test("Expect: 100-continue is answered when the handler reads the body, and not when it refuses first", async () => {
  let started = false;
  let read = () => {};
  const reading = new Promise<void>((r) => {
    read = r;
  });
  const srv = listen(async (req) => {
    if (new URL(req.url).pathname === "/refuse") return new Response("no", { status: 403 });
    started = true;
    await reading;
    return new Response(await req.text());
  });
  const c = await conn(srv.port);
  c.send("PUT /r HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  await waitFor(() => started, 5_000, "the handler to start");
  // A second request's round trip on another connection: the first has had time to answer if it would.
  const other = await conn(srv.port);
  other.send("PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  await other.until((t) => t.endsWith("no"), "the refusal");
  expect(other.text()).toStartWith("HTTP/1.1 403 Forbidden\r\n");
  expect(other.text()).not.toContain("100 Continue");
  expect(c.text()).toBe("");
  read();
  await c.until((t) => t.includes("HTTP/1.1 100 Continue\r\n\r\n"), "100 Continue");
  c.send("data");
  await c.until((t) => t.endsWith("data"), "the final response");
  expect(c.text()).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
});

for (const [name, head] of [
  [
    "both Content-Length and Transfer-Encoding",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  ],
  ["a Content-Length with a sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc"],
  ["a Content-Length that is not a number", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3a\r\n\r\nabc"],
  ["two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"],
  ["an unknown Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"],
  ["a space before a header's colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc"],
  ["a folded header line", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n"],
  ["a malformed request line", "GET /\r\nHost: x\r\n\r\n"],
  ["Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
] as const) {
  test(`${name}: 400 and the connection closed, the handler never called`, async () => {
    let called = 0;
    const srv = listen(() => {
      called++;
      return new Response("ok");
    });
    const c = await conn(srv.port);
    c.send(`${head}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`);
    await waitFor(() => c.st.closed, 5_000, "the connection to close");
    expect(c.text()).toStartWith("HTTP/1.1 400 Bad Request\r\n");
    expect(c.text().split("HTTP/1.1").length).toBe(2);
    expect(called).toBe(0);
  });
}

test("a bad chunk size fails the body the handler reads, and the connection closes after its response", async () => {
  const seen: string[] = [];
  let started = false;
  const srv = listen(async (req) => {
    started = true;
    try {
      await req.text();
      seen.push("read");
    } catch (e) {
      seen.push(`failed: ${(e as Error).message}`);
    }
    return new Response("answered", { status: 400 });
  });
  const c = await conn(srv.port);
  c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  await waitFor(() => started, 5_000, "the handler to start");
  c.send("zz\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
  await waitFor(() => c.st.closed, 5_000, "the connection to close");
  expect(seen).toEqual(["failed: bad chunk size"]);
  expect(c.text().split("HTTP/1.1").length).toBe(2);
});

test("a request head over the limit is answered 431 and the connection closed", async () => {
  let called = 0;
  const srv = listen(() => {
    called++;
    return new Response("ok");
  });
  const c = await conn(srv.port);
  c.send(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(9 * 1024)}`);
  await waitFor(() => c.st.closed, 5_000, "the connection to close");
  expect(c.text()).toStartWith("HTTP/1.1 431 Request Header Fields Too Large\r\n");
  expect(called).toBe(0);
});

test("HEAD has its length and no body; HTTP/1.0 and Connection: close end the connection after the response", async () => {
  const srv = listen(() => new Response(null, { headers: { "content-length": "42" } }));
  const c = await conn(srv.port);
  c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  await c.until((t) => t.endsWith("\r\n\r\n"), "the HEAD response");
  expect(c.text()).toContain("content-length: 42\r\n");
  c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  await waitFor(() => c.st.closed, 5_000, "the connection to close after Connection: close");
  expect(c.text().split("HTTP/1.1 200").length).toBe(3);
  expect(c.text()).toContain("connection: close\r\n");

  const srv10 = listen(echo);
  const d = await conn(srv10.port);
  d.send("GET /old HTTP/1.0\r\n\r\n");
  await waitFor(() => d.st.closed, 5_000, "an HTTP/1.0 connection to close");
  expect(d.text()).toEndWith("GET /old -");
  const e = await conn(srv10.port);
  e.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  await e.until((t) => t.endsWith("GET /a -"), "a kept-alive HTTP/1.0 response");
  expect(e.text()).toContain("connection: keep-alive\r\n");
  expect(e.st.closed).toBe(false);
});

test("a request body is read from the socket only as fast as the handler reads it", async () => {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let total = 0;
  const srv = listen(async (req) => {
    const reader = req.body!.getReader();
    const first = await reader.read();
    total += first.value?.length ?? 0;
    await gate;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      total += r.value.length;
    }
    return new Response(`got ${total}`);
  });
  const size = 64 * 1024 * 1024;
  const c = await conn(srv.port);
  c.send(`PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  const block = new Uint8Array(1024 * 1024);
  let sent = 0;
  // Writes until the socket takes no more: the server has stopped reading with the kernel's buffers full.
  await waitFor(
    () => {
      const n = c.sock.write(block);
      if (n > 0) sent += n;
      return n < block.length;
    },
    10_000,
    "the client's writes to be refused",
    1,
  );
  expect(sent).toBeLessThan(size / 4);
  release();
  let rest = size - sent;
  let pending = new Uint8Array(0);
  await waitFor(
    () => {
      while (rest > 0 || pending.length > 0) {
        if (pending.length === 0) {
          pending = block.subarray(0, Math.min(block.length, rest));
          rest -= pending.length;
        }
        const n = c.sock.write(pending);
        if (n <= 0) return false;
        pending = pending.subarray(n);
        if (pending.length > 0) return false;
      }
      return true;
    },
    60_000,
    "the whole body to be sent",
    1,
  );
  await c.until((t) => t.endsWith(`got ${size}`), "the handler to have read the whole body");
});

test("a streamed response is chunked and follows the socket's pace; fetch reads it whole", async () => {
  const block = new Uint8Array(1024 * 1024).fill(7);
  let sent = 0;
  const srv = listen(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(ctl) {
            if (sent++ < 32) ctl.enqueue(block);
            else ctl.close();
          },
        }),
        { headers: { "transfer-encoding": "chunked" } },
      ),
  );
  const res = await fetch(`http://127.0.0.1:${srv.port}/s`);
  expect(res.headers.get("transfer-encoding")).toBe("chunked");
  expect((await res.bytes()).length).toBe(32 * block.length);
});

test("a client that goes away aborts req.signal and cancels its streamed response", async () => {
  let aborted = false;
  let cancelled = false;
  const srv = listen(async (req) => {
    req.signal.addEventListener("abort", () => {
      aborted = true;
    });
    return new Response(
      new ReadableStream<Uint8Array>({
        pull: (ctl) => ctl.enqueue(new Uint8Array(64 * 1024)),
        cancel: () => {
          cancelled = true;
        },
      }),
      { headers: { "content-length": String(1 << 30) } },
    );
  });
  const c = await conn(srv.port);
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await c.until((t) => t.length > 100_000, "some of the body");
  c.sock.end();
  await waitFor(() => aborted && cancelled, 5_000, "the signal aborted and the body cancelled");
});

test("fetch and a JSON round trip work on a kept-alive connection", async () => {
  const srv = listen(async (req) =>
    req.method === "GET" ? new Response("plain") : Response.json({ got: await req.json(), ip: srv.port > 0 }),
  );
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`http://127.0.0.1:${srv.port}/j`, { method: "POST", body: JSON.stringify({ i }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json;charset=utf-8");
    expect(await res.json()).toEqual({ got: { i }, ip: true });
  }
  const plain = await fetch(`http://127.0.0.1:${srv.port}/t`, { method: "GET" });
  expect(plain.status).toBe(200);
  expect(plain.headers.get("content-type")).toBe("text/plain;charset=utf-8");
  expect(await plain.text()).toBe("plain");
});
