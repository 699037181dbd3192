// Hostile input: 100,000 random and mutated frames into server sessions (no
// crash, no hang, GoAway(protocol error) when it closes), then garbage over
// real TCP against an RpcServer (each connection answered as the same session code in memory answers
// it), which must keep answering Status.Ping.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { decode } from "../../src/lib/codec.ts";
import { encodeHeader, Flag, FrameType, GoAwayCode, HEADER_SIZE } from "../../src/transport/frame.ts";
import { MuxSession } from "../../src/transport/mux_session.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import { CaptureWire, waitFor } from "./fixtures/mem_wire.ts";
import { mulberry32 } from "../support/mulberry32.ts";

const rng = mulberry32;

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

function frameGen(r: () => number): () => Uint8Array {
  const int = (n: number) => Math.floor(r() * n);
  return () => {
    const kind = int(10);
    if (kind === 0) {
      const b = new Uint8Array(1 + int(40));
      for (let i = 0; i < b.length; i++) b[i] = int(256);
      return b;
    }
    const type = int(4) as 0 | 1 | 2 | 3;
    const flags = [0, Flag.SYN, Flag.ACK, Flag.FIN, Flag.RST, Flag.SYN | Flag.FIN][int(6)]!;
    const id = type >= 2 ? 0 : 1 + 2 * int(4);
    const len = type === 0 ? (int(3) === 0 ? int(600_000) : int(64)) : type === 3 ? int(4) : int(1 << 20);
    const h = encodeHeader(type, flags, id, len);
    if (kind <= 3) {
      const at = int(HEADER_SIZE);
      h[at] = (h[at] ?? 0) ^ (1 << int(8)); // mutate a bit
    }
    if (type !== 0 || len > 4096) return h;
    const out = new Uint8Array(HEADER_SIZE + len);
    out.set(h);
    for (let i = HEADER_SIZE; i < out.length; i++) out[i] = int(256);
    return out;
  };
}

function lastGoAway(bytes: Uint8Array): number | null {
  let code: number | null = null;
  for (let i = 0; i + HEADER_SIZE <= bytes.length; ) {
    const v = new DataView(bytes.buffer, bytes.byteOffset + i);
    const type = v.getUint8(1);
    const len = v.getUint32(8);
    if (type === FrameType.GoAway) code = len;
    i += HEADER_SIZE + (type === FrameType.Data ? len : 0);
  }
  return code;
}

test(`100,000 random and mutated frames: no crash, no hang, GoAway(protocol error) (seed ${SEED})`, () => {
  const r = rng(SEED);
  const next = frameGen(r);
  let frames = 0;
  let sessions = 0;
  let protocolCloses = 0;
  try {
    while (frames < 100_000) {
      const wire = new CaptureWire();
      const s = new MuxSession(wire, false, { keepaliveIntervalMs: 0, onStream: () => {} });
      sessions++;
      for (let i = 0; i < 40 && !s.closed; i++, frames++) {
        const f = next();
        // split some frames across deliveries, as TCP may
        if (r() < 0.2 && f.length > 2) {
          const cut = 1 + Math.floor(r() * (f.length - 1));
          s.onData(f.subarray(0, cut));
          s.onData(f.subarray(cut));
        } else s.onData(f);
      }
      if (s.closed) {
        const reason = s.closeReason ?? "";
        if (reason.startsWith("remote GoAway")) continue;
        expect(reason).toStartWith("protocol error");
        expect(lastGoAway(wire.bytes())).toBe(GoAwayCode.ProtocolError);
        expect(wire.ended).toBe(true);
        protocolCloses++;
      } else s.close("done");
    }
  } catch (e) {
    console.error(`fuzz failed with seed ${SEED} (rerun with FUZZ_SEED=${SEED})`);
    throw e;
  }
  expect(protocolCloses).toBeGreaterThan(sessions / 2);
});

let server: RpcServer;
let addr: string;
beforeAll(async () => {
  server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "x", Name: "x", Region: "r", Version: "v" }) });
  addr = `127.0.0.1:${(await server.listen()).port}`;
});
afterAll(() => server.close(0));

/** Sends `bytes` on a raw TCP connection and collects what the server answers until it closes the connection. */
async function rawConn(bytes: Uint8Array[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let closed = false;
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port: Number(addr.split(":")[1]),
    socket: {
      data(_s, d) {
        parts.push(d.slice());
      },
      close() {
        closed = true;
      },
    },
  });
  try {
    for (const b of bytes) sock.write(b);
    await waitFor(() => closed, 5000, "the server to close the connection");
  } finally {
    sock.end();
  }
  return Buffer.concat(parts);
}

/** How a server session in memory ends on `frames`, and whether they opened a stream. */
function reference(frames: Uint8Array[]): { reason: string | null; opened: boolean } {
  let opened = false;
  const s = new MuxSession(new CaptureWire(), false, { keepaliveIntervalMs: 0, onStream: () => (opened = true) });
  for (const f of frames) s.onData(f);
  const reason = s.closeReason;
  if (!s.closed) s.close("done");
  return { reason, opened };
}

const SURELY_INVALID = encodeHeader(FrameType.WindowUpdate, 0x10, 1, 0); // an unknown flag

/**
 * Random frames a server session answers with a protocol error, known in advance: the same session code
 * run in memory must end with "protocol error" on them. Frames that would open a stream (whose handling
 * over TCP runs concurrently with the parse) or end the session another way are left out, so the
 * outcome over TCP is the reference's.
 */
function garbageConnection(next: () => Uint8Array): Uint8Array[] {
  for (;;) {
    const kept: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) {
      const f = next();
      const ref = reference([...kept, f]);
      if (ref.opened || (ref.reason !== null && !ref.reason.startsWith("protocol error"))) continue;
      kept.push(f);
      if (ref.reason !== null) return kept;
    }
    kept.push(SURELY_INVALID);
    if (reference(kept).reason?.startsWith("protocol error")) return kept;
  }
}

test(`garbage over TCP: sessions close with GoAway(protocol error), listener stays up (seed ${SEED})`, async () => {
  const r = rng(SEED + 1);
  const next = frameGen(r);
  for (let c = 0; c < 30; c++) {
    const frames = [Uint8Array.of(0x01), ...garbageConnection(next)];
    const got = await rawConn([Buffer.concat(frames as Uint8Array<ArrayBuffer>[])]);
    expect(lastGoAway(got)).toBe(GoAwayCode.ProtocolError);
  }
  const pool = new ConnPool();
  expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
  await pool.close();
});

test("an unknown preamble is refused; a garbage request header is answered BAD_REQUEST on that stream alone", async () => {
  expect((await rawConn([Uint8Array.of(0x7f, 1, 2, 3)])).length).toBe(0);
  const pool = new ConnPool();
  const session = await pool.session(addr);
  const s = session.open();
  await s.write(Uint8Array.of(0, 0, 0, 3, 0xff, 0xff, 0xff)); // a length-prefixed non-CBOR header
  await s.closeWrite();
  const chunks: Uint8Array[] = [];
  for (let c = await s.read(); c !== null; c = await s.read()) chunks.push(c);
  const reply = Buffer.concat(chunks);
  const len = reply.readUInt32BE(0);
  expect(reply.length).toBe(4 + len);
  expect(decode(reply.subarray(4))).toMatchObject({ Error: { Code: "BAD_REQUEST", Message: expect.stringContaining("malformed") } });
  expect(session.closed).toBe(false);
  expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
  await pool.close();
});
