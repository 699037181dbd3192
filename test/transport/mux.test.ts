// The yamux session in memory: frame codec, streams, half-close, reset, flow
// control (windows, overrun, mutual writes, stalled readers), keepalive, the ping and write timeouts.
import { expect, test } from "bun:test";
import {
  decodeHeader,
  encodeHeader,
  Flag,
  FrameType,
  GoAwayCode,
  HEADER_SIZE,
  INITIAL_WINDOW,
  ProtocolError,
} from "../../src/transport/frame.ts";
import { MuxSession, SessionClosedError } from "../../src/transport/mux_session.ts";
import type { MuxStream } from "../../src/transport/mux_stream.ts";
import { CaptureWire, sessionPair, waitFor } from "./fixtures/mem_wire.ts";

async function readAll(s: MuxStream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const c = await s.read();
    if (c === null) break;
    parts.push(c);
  }
  return Buffer.concat(parts);
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test("frame header round trips and rejects what the spec does not allow", () => {
  for (const [t, f, id, len] of [
    [0, 1, 1, 5],
    [1, 2 | 4, 0xfffffffe, 0xffffffff],
    [2, 1, 0, 7],
    [3, 0, 0, 2],
  ] as const) {
    const h = decodeHeader(encodeHeader(t, f, id, len));
    expect([h.version, h.type, h.flags, h.streamId, h.length]).toEqual([0, t, f, id, len]);
  }
  const bad = (mut: (b: Uint8Array) => void) => {
    const b = encodeHeader(FrameType.Data, 0, 1, 0);
    mut(b);
    expect(() => decodeHeader(b)).toThrow(ProtocolError);
  };
  bad((b) => (b[0] = 1)); // version
  bad((b) => (b[1] = 4)); // type
  bad((b) => (b[3] = 0x10)); // flags
  bad((b) => (b[7] = 0)); // data on stream 0
  const ping = encodeHeader(FrameType.Ping, Flag.SYN, 3, 1);
  expect(() => decodeHeader(ping)).toThrow(ProtocolError);
});

test("open, accept, both directions, half-close, then both streams are gone", async () => {
  const { client, server } = sessionPair();
  const a = client.open();
  expect(a.id % 2).toBe(1);
  await a.write(pattern(1000, 1));
  const b = await server.accept();
  expect(b.id).toBe(a.id);
  await a.closeWrite();
  expect(await readAll(b)).toEqual(pattern(1000, 1));
  // b can still write after a's FIN (half-close)
  await b.write(pattern(500, 2));
  await b.closeWrite();
  expect(await readAll(a)).toEqual(pattern(500, 2));
  await waitFor(() => client.numStreams === 0 && server.numStreams === 0, 1000, "stream cleanup");
  const s2 = server.open();
  expect(s2.id % 2).toBe(0);
});

test("RST: the peer's reads and writes fail, the session lives", async () => {
  const { client, server } = sessionPair();
  const a = client.open();
  await a.write(Uint8Array.of(1));
  const b = await server.accept();
  expect(await b.read()).toEqual(Uint8Array.of(1));
  a.reset();
  await expect(b.read()).rejects.toMatchObject({ reason: "RESET", code: "ABORTED" });
  await expect(b.write(Uint8Array.of(2))).rejects.toMatchObject({ reason: "RESET", code: "ABORTED" });
  expect(client.closed || server.closed).toBe(false);
  expect(await client.ping()).toBeGreaterThanOrEqual(0);
});

test("a large transfer respects the window: never more than a window buffered", async () => {
  for (const win of [INITIAL_WINDOW, 4 * 1024 * 1024]) {
    const { client, server } = sessionPair({ maxStreamWindow: win }, { maxStreamWindow: win }, 256 * 1024);
    const a = client.open();
    const total = 32 * 1024 * 1024;
    const chunk = pattern(100_000, 3);
    const writing = (async () => {
      for (let sent = 0; sent < total; sent += chunk.length) await a.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
      await a.closeWrite();
    })();
    const b = await server.accept();
    let got = 0;
    let maxBuffered = 0;
    let slow = 0;
    for (;;) {
      maxBuffered = Math.max(maxBuffered, b.bufferedBytes);
      const c = await b.read();
      if (c === null) break;
      got += c.length;
      if (++slow % 64 === 0) await new Promise((r) => setTimeout(r, 1)); // a slow reader
    }
    await writing;
    expect(got).toBe(total);
    expect(maxBuffered).toBeLessThanOrEqual(win);
  }
});

test("both ends write more than a window without reading: no deadlock", async () => {
  const { client, server } = sessionPair({}, {}, 32 * 1024);
  const a = client.open();
  await a.write(Uint8Array.of(0));
  const b = await server.accept();
  expect(await b.read()).toEqual(Uint8Array.of(0));
  const n = 3 * INITIAL_WINDOW;
  let written = 0;
  const wa = a.write(pattern(n, 5)).then(() => {
    written++;
    return a.closeWrite();
  });
  const wb = b.write(pattern(n, 6)).then(() => {
    written++;
    return b.closeWrite();
  });
  // Neither side reads until both writers are stuck on their windows (each side holds a window of
  // unread bytes, less the byte read above); then reading frees both.
  await waitFor(
    () => a.bufferedBytes >= INITIAL_WINDOW - 1 && b.bufferedBytes >= INITIAL_WINDOW - 1,
    5_000,
    "a window of unread bytes on each side",
  );
  expect(written).toBe(0);
  const [ra, rb] = await Promise.all([readAll(a), readAll(b), wa, wb]);
  expect(ra).toEqual(pattern(n, 6));
  expect(rb).toEqual(pattern(n, 5));
});

test("a stalled reader on one stream never blocks another stream", async () => {
  const { client, server } = sessionPair();
  const stalled = client.open();
  let stalledDone = false;
  const blocked = stalled.write(pattern(4 * INITIAL_WINDOW, 7)).finally(() => (stalledDone = true)); // stuck after one window
  const sb = await server.accept(); // never read
  const other = client.open();
  await other.write(Uint8Array.of(42));
  await other.closeWrite();
  const ob = await server.accept();
  expect(await readAll(ob)).toEqual(Uint8Array.of(42));
  await ob.write(Uint8Array.of(43));
  expect(await other.read()).toEqual(Uint8Array.of(43));
  // The other stream went both ways while the stalled one is still stuck.
  expect(stalledDone).toBe(false);
  expect(sb.bufferedBytes).toBe(INITIAL_WINDOW);
  stalled.reset();
  await expect(blocked).rejects.toMatchObject({ reason: "RESET", code: "ABORTED" });
});

/** Feed raw frames into a server session and return what it wrote back. */
function feed(frames: Uint8Array[]): { session: MuxSession; wire: CaptureWire } {
  const wire = new CaptureWire();
  const session = new MuxSession(wire, false, { keepaliveIntervalMs: 0, onStream: () => {} });
  for (const f of frames) session.onData(f);
  return { session, wire };
}

function goAwayCodeIn(bytes: Uint8Array): number | null {
  for (let i = 0; i + HEADER_SIZE <= bytes.length; ) {
    const v = new DataView(bytes.buffer, bytes.byteOffset + i);
    const type = v.getUint8(1);
    const len = v.getUint32(8);
    if (type === FrameType.GoAway) return len;
    i += HEADER_SIZE + (type === FrameType.Data ? len : 0);
  }
  return null;
}

test("window overrun by a misbehaving peer closes the session with GoAway(protocol error)", async () => {
  const syn = encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0);
  const over = encodeHeader(FrameType.Data, 0, 1, INITIAL_WINDOW + 1);
  const { session, wire } = feed([syn, over, new Uint8Array(INITIAL_WINDOW + 1)]);
  await waitFor(() => session.closed, 1000, "session close");
  expect(session.closeReason).toContain("receive window exceeded");
  expect(goAwayCodeIn(wire.bytes())).toBe(GoAwayCode.ProtocolError);
  expect(wire.ended).toBe(true);
});

test("wrong-parity SYN, duplicate SYN and bad ping are protocol errors", () => {
  for (const frames of [
    [encodeHeader(FrameType.WindowUpdate, Flag.SYN, 2, 0)],
    [encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0), encodeHeader(FrameType.WindowUpdate, Flag.SYN, 1, 0)],
    [encodeHeader(FrameType.Ping, 0, 0, 1)],
  ]) {
    const { session, wire } = feed(frames);
    expect(session.closed).toBe(true);
    expect(goAwayCodeIn(wire.bytes())).toBe(GoAwayCode.ProtocolError);
  }
});

test("ping is answered with the same opaque value", () => {
  const { session, wire } = feed([encodeHeader(FrameType.Ping, Flag.SYN, 0, 0xdeadbeef)]);
  return waitFor(() => wire.out.length > 0, 1000, "ping ack").then(() => {
    const h = decodeHeader(wire.bytes());
    expect([h.type, h.flags, h.length]).toEqual([FrameType.Ping, Flag.ACK, 0xdeadbeef]);
    expect(session.closed).toBe(false);
  });
});

test("keepalive closes a session whose peer stopped answering", async () => {
  const { client, wb, wa } = sessionPair({ keepaliveIntervalMs: 50, keepaliveTimeoutMs: 150 });
  await waitFor(() => !Number.isNaN(client.rttMs), 1000, "first keepalive RTT");
  wa.blackhole = true; // the peer's pings no longer arrive, so nothing answers
  void wb;
  await waitFor(() => client.closed, 2000, "keepalive failure");
  expect(client.closeReason).toContain("keepalive");
});

test("a ping nobody answers rejects with 'ping timeout'; its late answer finds nothing and harms nothing", async () => {
  const wire = new CaptureWire();
  const session = new MuxSession(wire, true, { keepaliveIntervalMs: 0, keepaliveTimeoutMs: 50 });
  const t0 = performance.now();
  const e = await session.ping().then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(SessionClosedError);
  expect((e as Error).message).toBe("ping timeout");
  expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
  const sent = decodeHeader(wire.bytes());
  expect([sent.type, sent.flags]).toEqual([FrameType.Ping, Flag.SYN]);
  session.onData(encodeHeader(FrameType.Ping, Flag.ACK, 0, sent.length));
  expect(session.closed).toBe(false);
  expect(Number.isNaN(session.rttMs)).toBe(true);
});

test("a wire that stops draining closes the session at the write timeout", async () => {
  let offered = 0;
  const stuck = {
    write: (b: Uint8Array) => {
      offered += b.length;
      return 0;
    },
    end: () => {},
  };
  const session = new MuxSession(stuck, true, { keepaliveIntervalMs: 0, writeTimeoutMs: 100 });
  const s = session.open();
  void s.write(Uint8Array.of(1, 2, 3)).catch(() => {});
  await waitFor(() => session.closed, 2_000, "the write timeout");
  expect(offered).toBeGreaterThan(0);
  expect(session.closeReason).toBe("write timeout: socket did not drain in 100 ms");
});

test("streams beyond the limit and after GoAway are refused with RST, session alive", async () => {
  const { client, server } = sessionPair({}, { maxStreams: 2 });
  const s1 = client.open();
  const s2 = client.open();
  const s3 = client.open();
  await s3.write(Uint8Array.of(1)).catch(() => {});
  await expect(s3.read()).rejects.toMatchObject({ reason: "RESET", code: "ABORTED" });
  await server.accept();
  await server.accept();
  server.goAway();
  await waitFor(() => client.goingAway, 1000, "GoAway at the client");
  expect(() => client.open()).toThrow();
  await s1.write(Uint8Array.of(9)); // existing streams keep working
  expect(client.closed).toBe(false);
  void s2;
});
