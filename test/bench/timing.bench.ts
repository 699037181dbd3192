// How long the transport takes to give up, where the unit tests only check that it does: an RPC past
// its deadline, and keepalive noticing a peer that stopped answering. Each is set against its
// configured time. Run: bun test/bench/timing.bench.ts  (BENCH_RUNS, default 20)
import { z } from "zod";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcError } from "../../src/transport/rpc_error.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import { dialMux } from "../../src/transport/tcp_wire.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const DEADLINE_MS = 100;
const KEEPALIVE = { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 400 };

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 2)]!.toFixed(0)} | ${s.at(-1)!.toFixed(0)}`;
}

/** An RPC whose handler never answers: time until the caller gets TIMEOUT. */
async function deadline(addr: string, pool: ConnPool): Promise<number> {
  const t0 = performance.now();
  const e = await pool.call(addr, "Bench.Hang", null, { timeoutMs: DEADLINE_MS }).then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof RpcError) || e.code !== "TIMEOUT") throw new Error(`expected TIMEOUT, got ${String(e)}`);
  return performance.now() - t0;
}

/** A peer that takes the connection and then says nothing: time from the first unanswered ping on. */
async function keepalive(): Promise<number> {
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const session = await dialMux(`127.0.0.1:${silent.port}`, KEEPALIVE);
    const t0 = performance.now();
    while (!session.closed) {
      if (performance.now() - t0 > 10_000) throw new Error("keepalive never closed the session");
      await Bun.sleep(2);
    }
    if (!session.closeReason?.includes("keepalive")) throw new Error(`closed for another reason: ${session.closeReason}`);
    return performance.now() - t0;
  } finally {
    silent.stop(true);
  }
}

const server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "b", Name: "b", Region: "r", Version: "v" }) });
server.unary(
  "Bench.Hang",
  z.unknown(),
  (_a, ctx) => new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted")))),
);
const addr = `127.0.0.1:${(await server.listen()).port}`;
const pool = new ConnPool();
await pool.call(addr, "Status.Ping", undefined);
const deadlines: number[] = [];
const keepalives: number[] = [];
for (let i = 0; i < RUNS; i++) {
  deadlines.push(await deadline(addr, pool));
  keepalives.push(await keepalive());
}
await pool.close();
await server.close(0);

console.log(`\n${RUNS} runs each, loopback\n`);
console.log("| giving up | configured | p50 ms | max ms |\n|---|---|---|---|");
console.log(`| unary RPC past its deadline -> TIMEOUT | ${DEADLINE_MS} ms deadline | ${stats(deadlines)} |`);
console.log(
  `| keepalive on a silent peer -> session closed | ping every ${KEEPALIVE.keepaliveIntervalMs} ms, ${KEEPALIVE.keepaliveTimeoutMs} ms timeout | ${stats(keepalives)} |`,
);
process.exit(0);
