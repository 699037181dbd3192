// Hostile input: 100,000 random and mutated frames into server sessions (no
// crash, no hang, GoAway(protocol error) when it closes), then garbage over
// real TCP against an RpcServer, which must keep answering Status.Ping.
import { afterAll, beforeAll, expect, test } from "bun:test";
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
    const len = type === 0 ? int(3) === 0 ? int(600_000) : int(64) : type === 3 ? int(4) : int(1 << 20);
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
  const t0 = performance.now();
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
  expect(performance.now() - t0).toBeLessThan(30_000);
});

let server: RpcServer;
let addr: string;
beforeAll(async () => {
  server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "x", Name: "x", Region: "r", Version: "v" }) });
  addr = `127.0.0.1:${(await server.listen()).port}`;
});
afterAll(() => server.close(0));

async function rawConn(bytes: Uint8Array[]): Promise<{ got: Uint8Array; closed: boolean }> {
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
  for (const b of bytes) sock.write(b);
  await waitFor(() => closed || parts.length > 0, 3000, "server answer").catch(() => {});
  await waitFor(() => closed, 500, "close").catch(() => {});
  sock.end();
  return { got: Buffer.concat(parts), closed };
}

test("garbage over TCP: sessions close with GoAway(protocol error), listener stays up", async () => {
  const r = rng(SEED + 1);
  const next = frameGen(r);
  for (let c = 0; c < 30; c++) {
    const frames: Uint8Array[] = [Uint8Array.of(0x01)];
    for (let i = 0; i < 30; i++) frames.push(next());
    frames.push(encodeHeader(FrameType.WindowUpdate, 0x10, 1, 0)); // surely invalid: unknown flag
    const { got } = await rawConn([Buffer.concat(frames as Uint8Array<ArrayBuffer>[])]);
    const code = lastGoAway(got);
    if (code !== null) expect(code).toBe(GoAwayCode.ProtocolError);
  }
  const pool = new ConnPool();
  expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
  await pool.close();
});

test("an unknown preamble is refused; a garbage request header resets only that stream", async () => {
  const { closed } = await rawConn([Uint8Array.of(0x7f, 1, 2, 3)]);
  expect(closed).toBe(true);
  const pool = new ConnPool();
  const session = await pool.session(addr);
  const s = session.open();
  await s.write(Uint8Array.of(0, 0, 0, 3, 0xff, 0xff, 0xff)); // a length-prefixed non-CBOR header
  await s.closeWrite();
  const reply = await s.read().catch((e: { code: string }) => e.code);
  expect(reply === "RESET" || reply instanceof Uint8Array).toBe(true);
  expect(session.closed).toBe(false);
  expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "x" });
  await pool.close();
});
