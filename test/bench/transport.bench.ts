// Transport benchmark: raw loopback TCP (Bun sockets) beside one mux stream
// (256 KiB and 4 MiB windows), 8 parallel streams and one streaming RPC; unary RPC rate and p99
// at 1 and 64 callers. Run: bun test/bench/transport.bench.ts  (BENCH_MIB, BENCH_RUNS)
import type { Socket } from "bun";
import { z } from "zod";
import type { MuxSession } from "../../src/transport/mux_session.ts";
import type { MuxStream } from "../../src/transport/mux_stream.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import { dialMux, listenMux } from "../../src/transport/tcp_wire.ts";

const MIB = 1024 * 1024;
const TOTAL = Number(process.env.BENCH_MIB ?? 1024) * MIB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHUNK = 64 * 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Raw Bun TCP: one tested write-all loop over partial writes and drain. */
async function rawTcp(): Promise<number> {
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, d) {
        received += d.length;
        if (received >= TOTAL) done();
      },
    },
  });
  let drained: (() => void) | null = null;
  const sock: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port: listener.port,
    socket: {
      data() {},
      drain() {
        drained?.();
      },
    },
  });
  const buf = new Uint8Array(CHUNK).fill(1);
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; ) {
    let off = 0;
    while (off < buf.length) {
      const n = sock.write(buf.subarray(off));
      if (n < 0) throw new Error("socket closed");
      off += n;
      if (off < buf.length) await new Promise<void>((r) => (drained = r));
    }
    sent += buf.length;
  }
  await finished;
  const secs = (performance.now() - t0) / 1000;
  sock.end();
  listener.stop(true);
  return TOTAL / MIB / secs;
}

async function drainStream(s: MuxStream): Promise<void> {
  for (;;) if ((await s.read()) === null) return;
}

async function muxThroughput(window: number, streams: number): Promise<number> {
  const listener = listenMux({
    hostname: "127.0.0.1",
    port: 0,
    muxOptions: () => ({
      maxStreamWindow: window,
      keepaliveIntervalMs: 0,
      onStream: (s) => void drainStream(s).then(() => s.closeWrite()),
    }),
    onSession: () => true,
  });
  const session: MuxSession = await dialMux(`127.0.0.1:${listener.port}`, { maxStreamWindow: window, keepaliveIntervalMs: 0 });
  const buf = new Uint8Array(CHUNK).fill(2);
  const per = TOTAL / streams;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const s = session.open();
      for (let sent = 0; sent < per; sent += CHUNK) await s.write(buf);
      await s.closeWrite();
      await s.read(); // the receiver's FIN: everything arrived
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  session.close();
  listener.stop(true);
  return TOTAL / MIB / secs;
}

async function rpcRate(callers: number, ms: number): Promise<{ rate: number; p50: number; p99: number }> {
  const server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "b", Name: "b", Region: "r", Version: "v" }) });
  server.unary("Bench.Echo", z.object({ n: z.number() }), async (a) => ({ n: a.n }));
  const { port } = await server.listen();
  const pool = new ConnPool();
  const addr = `127.0.0.1:${port}`;
  await pool.call(addr, "Bench.Echo", { n: 0 });
  const lat: number[] = [];
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await pool.call(addr, "Bench.Echo", { n: 1 });
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await pool.close();
  await server.close(0);
  lat.sort((a, b) => a - b);
  return { rate: lat.length / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

/** A streaming RPC as a restore upload uses it: 64 KiB chunks sent, read and dropped by the handler. */
async function rpcStreamThroughput(): Promise<number> {
  const server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "b", Name: "b", Region: "r", Version: "v" }) });
  let received = 0;
  server.stream("Bench.Sink", z.object({}), async (_a, _ctx, stream) => {
    for await (const c of stream) received += c.byteLength;
    await stream.end();
  });
  const { port } = await server.listen();
  const pool = new ConnPool();
  const addr = `127.0.0.1:${port}`;
  const buf = new Uint8Array(CHUNK).fill(2);
  const t0 = performance.now();
  const st = await pool.openStream(addr, "Bench.Sink", {});
  for (let sent = 0; sent < TOTAL; sent += CHUNK) await st.send(buf);
  await st.end();
  for await (const _ of st) {
    // the handler ends its side once it has read everything
  }
  const secs = (performance.now() - t0) / 1000;
  if (received !== TOTAL) throw new Error(`rpc stream: received ${received} of ${TOTAL}`);
  await pool.close();
  await server.close(0);
  return TOTAL / MIB / secs;
}

async function main() {
  const rows: string[] = [];
  const runs = async (f: () => Promise<number>) => {
    const xs: number[] = [];
    for (let i = 0; i < RUNS; i++) xs.push(await f());
    return median(xs);
  };
  const raw = await runs(rawTcp);
  rows.push(`| raw Bun TCP, 64 KiB writes (baseline) | ${raw.toFixed(0)} MiB/s | 100% |`);
  for (const [label, win, n] of [
    ["1 mux stream, 256 KiB window", 256 * 1024, 1],
    ["1 mux stream, 4 MiB window", 4 * MIB, 1],
    ["8 mux streams, 256 KiB windows", 256 * 1024, 8],
    ["8 mux streams, 4 MiB windows", 4 * MIB, 8],
  ] as const) {
    const v = await runs(() => muxThroughput(win, n));
    rows.push(`| ${label} | ${v.toFixed(0)} MiB/s | ${((100 * v) / raw).toFixed(0)}% |`);
  }
  const rpcStream = await runs(rpcStreamThroughput);
  rows.push(
    `| 1 streaming RPC, 64 KiB chunks (a restore upload's path) | ${rpcStream.toFixed(0)} MiB/s | ${((100 * rpcStream) / raw).toFixed(0)}% |`,
  );
  console.log(`\n${TOTAL / MIB} MiB per run, median of ${RUNS} runs, sender and receiver in one process, loopback\n`);
  console.log("| transfer | throughput | vs raw |\n|---|---|---|");
  for (const r of rows) console.log(r);
  console.log("\n| unary RPC (Status-like echo) | calls/s | p50 ms | p99 ms |\n|---|---|---|---|");
  for (const c of [1, 64]) {
    const rs: Array<{ rate: number; p50: number; p99: number }> = [];
    for (let i = 0; i < RUNS; i++) rs.push(await rpcRate(c, 2000));
    const m = rs.sort((a, b) => a.rate - b.rate)[Math.floor(rs.length / 2)]!;
    console.log(`| ${c} caller${c > 1 ? "s" : ""} | ${m.rate.toFixed(0)} | ${m.p50.toFixed(3)} | ${m.p99.toFixed(3)} |`);
  }
}

await main();
process.exit(0);
