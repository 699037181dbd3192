// Snapshot sends to a peer that stops reading. The peer's mux session stays alive (it answers
// pings) while the stream's window stays shut, so only the send's own bounds end it: a failed send
// is reported to raft, which tries again, instead of holding that follower in snapshot state for good.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { z } from "zod";
import { silentLogger } from "../../src/lib/logger.ts";
import { message } from "../../src/raft/message.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { PeerTransport } from "../../src/server/peer_transport.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";

/** How the fake receiver treats the next snapshot. */
let behaviour: "stall" | "no-answer" | "ok" = "ok";
let received = 0;
let server: RpcServer;
let pool: ConnPool;
let address = "";

beforeAll(async () => {
  server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "b", Name: "b", Region: "global", Version: "0.1.0" }) });
  // The raft message stream the transport opens on its own: drained.
  server.stream("Raft.Messages", z.unknown(), async (_a, _c, stream) => {
    for await (const _ of stream) {
      // dropped
    }
  });
  server.stream("Raft.InstallSnapshot", z.unknown(), async (_a, ctx, stream) => {
    const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
    if (behaviour === "stall") return aborted; // reads nothing: the sender's window shuts
    received = 0;
    for await (const c of stream) received += c.byteLength;
    if (behaviour === "no-answer") return aborted; // read it all, but never says it is installed
    await stream.end();
  });
  const { port } = await server.listen();
  address = `127.0.0.1:${port}`;
  pool = new ConnPool();
});

afterAll(async () => {
  await pool.close();
  await server.close(100);
});

const CHUNKS = 64;
const CHUNK = 64 * 1024; // 4 MiB in all: far past a 256 KiB stream window
const source = {
  async *open() {
    for (let i = 0; i < CHUNKS; i++) yield new Uint8Array(CHUNK).fill(i);
  },
};

function transport(): PeerTransport {
  const t = new PeerTransport(
    () => "a",
    pool,
    silentLogger(),
    new Metrics(),
    () => {},
    () => "",
    { idleMs: 300, installMs: 300 },
  );
  t.setPeers([{ id: "b", address }]);
  return t;
}

const snap = message({ type: "snap", from: "a", to: "b", term: 2, snapshot: { index: 10, term: 2, config: { servers: [] } } });

test("a healthy receiver: the send succeeds", async () => {
  behaviour = "ok";
  const t = transport();
  try {
    expect(await t.sendSnapshot(snap, source)).toBe(true);
    expect(received).toBe(CHUNKS * CHUNK);
  } finally {
    t.close();
  }
});

test("a receiver that stops reading: the send fails after the idle bound instead of waiting for ever", async () => {
  behaviour = "stall";
  const t = transport();
  try {
    expect(await t.sendSnapshot(snap, source)).toBe(false);
  } finally {
    t.close();
  }
});

test("a receiver that never confirms the install: the send fails after the install bound", async () => {
  behaviour = "no-answer";
  const t = transport();
  try {
    expect(await t.sendSnapshot(snap, source)).toBe(false);
    expect(received).toBe(CHUNKS * CHUNK);
  } finally {
    t.close();
  }
});
