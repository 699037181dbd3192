// Every RPC connection has a bound, over real sockets: one that never sends its first byte, and one
// that never completes a mux frame, are closed after their deadlines; the N+1th connection from one
// address is closed at once (silent connections count); refusals are counted and logged at a bounded rate.
import { afterEach, expect, test } from "bun:test";
import { encodeHeader, Flag, FrameType } from "../../src/transport/frame.ts";
import { RefusalLog } from "../../src/lib/refusal_log.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcServer, type RpcServerOptions } from "../../src/transport/rpc_server.ts";
import { waitFor } from "../support/wait.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function startServer(o: Partial<RpcServerOptions>) {
  const lines: string[] = [];
  const refused: string[] = [];
  const server = new RpcServer({
    bindAddr: "127.0.0.1",
    port: 0,
    info: () => ({ ID: "x", Name: "x", Region: "r", Version: "v" }),
    log: (level, msg) => {
      if (level === "warn" && msg.startsWith("rpc: refused")) lines.push(msg);
    },
    onRefused: (reason) => refused.push(reason),
    mux: { keepaliveIntervalMs: 0 },
    ...o,
  });
  const { port } = await server.listen();
  cleanup.push(() => server.close(0));
  return { server, port, lines, refused };
}

/** A raw TCP client that records when the server closed it. */
async function raw(port: number, first?: Uint8Array) {
  const st = { openedAt: performance.now(), closedAt: 0, closed: false };
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data() {},
      close() {
        st.closed = true;
        st.closedAt = performance.now();
      },
    },
  });
  if (first) sock.write(first);
  cleanup.push(() => {
    sock.end();
  });
  return { st, sock };
}

test("a connection that never sends its first byte is closed after the deadline, and counted", async () => {
  const { port, refused, server } = await startServer({ firstByteMs: 400, firstFrameMs: 5_000 });
  const { st } = await raw(port);
  await waitFor(() => st.closed, 5_000, "the silent connection to be closed");
  expect(st.closedAt - st.openedAt).toBeGreaterThanOrEqual(350);
  expect(refused).toEqual(["first_byte_timeout"]);
  expect(server.refusedCounts()).toEqual({ first_byte_timeout: 1 });
});

test("a connection that sends the preamble and part of a frame header is closed after the first-frame deadline", async () => {
  const { port, refused } = await startServer({ firstByteMs: 200, firstFrameMs: 700 });
  const { st } = await raw(port, Uint8Array.of(0x01, 0x00, 0x01, 0x00));
  await waitFor(() => st.closed, 5_000, "the stalled connection to be closed");
  expect(st.closedAt - st.openedAt).toBeGreaterThanOrEqual(650);
  expect(refused).toEqual(["first_frame_timeout"]);
});

test("a client that speaks in time keeps its session past both deadlines", async () => {
  const { port, refused } = await startServer({ firstByteMs: 200, firstFrameMs: 400 });
  const { st, sock } = await raw(port, Buffer.concat([Uint8Array.of(0x01), encodeHeader(FrameType.Ping, Flag.SYN, 0, 7)]));
  const pool = new ConnPool();
  cleanup.push(() => pool.close());
  expect(await pool.call(`127.0.0.1:${port}`, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
  // A stalled connection opened after both is closed by its first-frame deadline: both good ones are past theirs.
  const probe = await raw(port, Uint8Array.of(0x01));
  await waitFor(() => probe.st.closed, 5_000, "the probe connection to be closed");
  expect(st.closed).toBe(false);
  expect(await pool.call(`127.0.0.1:${port}`, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
  expect(refused).toEqual(["first_frame_timeout"]);
  sock.end();
});

test("the cap counts connections, silent ones too: the N+1th from one address is closed at once, a freed slot is reused", async () => {
  const { port, refused, lines } = await startServer({ maxConnsPerClient: 3, firstByteMs: 30_000, firstFrameMs: 30_000 });
  const held = [await raw(port), await raw(port), await raw(port)];
  const extra = await raw(port);
  await waitFor(() => extra.st.closed, 2_000, "the 4th connection to be refused");
  expect(extra.st.closedAt - extra.st.openedAt).toBeLessThan(1_000); // not by a deadline (30 s)
  expect(held.every((h) => !h.st.closed)).toBe(true);
  expect(refused).toEqual(["conn_limit"]);
  // Free one; a new connection (a real client) now gets in and is served.
  held[0]!.sock.end();
  const pool = new ConnPool();
  cleanup.push(() => pool.close());
  expect(
    await waitFor(() => pool.call(`127.0.0.1:${port}`, "Status.Ping", undefined, { timeoutMs: 1_000 }), 5_000, "a freed slot"),
  ).toMatchObject({ ID: "x" });
  // 40 more refusals make no more than one further log line (bounded rate), with the counts in it.
  for (let i = 0; i < 40; i++) {
    const r = await raw(port);
    await waitFor(() => r.st.closed, 2_000, `refused connection ${i}`);
  }
  expect(refused.length).toBe(41);
  expect(lines.length).toBe(1);
  expect(lines[0]).toContain("refused 1 conn_limit");
});

test("the refusal log: one line per interval whatever the flood, each with the count since the last", async () => {
  const lines: string[] = [];
  const metric: string[] = [];
  const log = new RefusalLog(
    "http",
    (_l, m) => lines.push(m),
    (r) => metric.push(r),
    300,
  );
  cleanup.push(() => log.close());
  for (let i = 0; i < 5_000; i++) log.refuse(i % 2 ? "conn_limit" : "idle_timeout", `10.0.0.${i % 7}`);
  expect(lines.length).toBe(1);
  await waitFor(() => lines.length === 2, 3_000, "the pending counts to be logged");
  expect(lines[1]).toContain("refused 2500 conn_limit, 2499 idle_timeout");
  expect(log.counts()).toEqual({ idle_timeout: 2500, conn_limit: 2500 });
  expect(metric.length).toBe(5_000);
});

test("a flood of stream SYNs past the stream limit, and of bad preambles, makes one log line, with counts", async () => {
  const { port, refused, lines, server } = await startServer({
    mux: { keepaliveIntervalMs: 0, maxStreams: 2 },
    firstByteMs: 30_000,
    firstFrameMs: 30_000,
  });
  const syns: Uint8Array[] = [Uint8Array.of(0x01)];
  for (let i = 0; i < 5_000; i++) syns.push(encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1 + 2 * i, 0));
  const { st } = await raw(port, Buffer.concat(syns));
  await waitFor(() => refused.length === 4_998, 10_000, "4,998 refused streams");
  for (let i = 0; i < 30; i++) {
    const bad = await raw(port, Uint8Array.of(0x7f));
    await waitFor(() => bad.st.closed, 2_000, "the bad preamble to be refused");
  }
  expect(server.refusedCounts()).toEqual({ stream_limit: 4_998, unknown_preamble: 30 });
  expect(st.closed).toBe(false); // the session itself lives on
  expect(lines.length).toBe(1);
  expect(lines[0]).toContain("refused 1 stream_limit");
});
