// RPC over real loopback TCP: unary, errors with codes, deadlines, cancellation,
// streaming with explicit end / abort, Status.Ping, 1,000 concurrent calls.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { z } from "zod";
import { EdgeError } from "../../src/lib/errors.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcError } from "../../src/transport/rpc_error.ts";
import { chunkFrameHead, encodeFrame } from "../../src/transport/rpc_frame.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";

let server: RpcServer;
let pool: ConnPool;
let addr: string;
let cancelledOnServer = 0;

beforeAll(async () => {
  server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "id-1", Name: "n1", Region: "global", Version: "0.1.0" }) });
  server.unary("Echo.Add", z.object({ a: z.number(), b: z.number() }), async (a) => ({ sum: a.a + a.b }));
  server.unary("Echo.Fail", z.unknown(), async () => {
    throw new EdgeError("CONFLICT", "index mismatch");
  });
  server.unary("Echo.Ctx", z.unknown(), async (_a, ctx) => ({ region: ctx.region, token: ctx.authToken }));
  server.unary(
    "Echo.Hang",
    z.unknown(),
    (_a, ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => {
          cancelledOnServer++;
          reject(new Error("aborted"));
        }),
      ),
  );
  server.stream("Echo.Upper", z.object({ n: z.number().int() }), async (args, _ctx, stream) => {
    let got = 0;
    for await (const c of stream) {
      got += c.length;
      await stream.send(c.map((x) => x + 1));
    }
    await stream.send(new TextEncoder().encode(`total ${got} ${args.n}`));
  });
  server.stream("Echo.Abort", z.unknown(), async (_a, _c, stream) => {
    await stream.send(Uint8Array.of(1));
    stream.abort("DISK", "disk on fire");
  });
  server.stream("Echo.Throw", z.unknown(), async (_a, _c, stream) => {
    await stream.send(Uint8Array.of(1));
    throw new EdgeError("NO_LEADER", "lost leadership");
  });
  const { port } = await server.listen();
  addr = `127.0.0.1:${port}`;
  pool = new ConnPool();
});

afterAll(async () => {
  await pool.close();
  await server.close();
});

async function waitFor(cond: () => boolean, ms: number, what: string) {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

test("Status.Ping answers the server info", async () => {
  expect(await pool.call(addr, "Status.Ping", undefined)).toEqual({ ID: "id-1", Name: "n1", Region: "global", Version: "0.1.0" });
});

test("unary call returns the reply and passes region and token", async () => {
  expect(await pool.call(addr, "Echo.Add", { a: 2, b: 40 })).toEqual({ sum: 42 });
  expect(await pool.call(addr, "Echo.Ctx", null, { region: "eu", authToken: "tok" })).toEqual({ region: "eu", token: "tok" });
});

test("remote EdgeError codes are preserved; bad args and unknown methods have codes", async () => {
  const err = async (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error("expected failure");
      },
      (e: unknown) => e as RpcError,
    );
  const e1 = await err(pool.call(addr, "Echo.Fail", null));
  expect(e1).toBeInstanceOf(RpcError);
  expect([e1.code, e1.message]).toEqual(["CONFLICT", "index mismatch"]);
  expect((await err(pool.call(addr, "Echo.Add", { a: "x" }))).code).toBe("BAD_REQUEST");
  expect((await err(pool.call(addr, "No.Such", null))).code).toBe("NOT_FOUND");
});

test("deadline: the caller gets TIMEOUT and the server's signal aborts", async () => {
  const before = cancelledOnServer;
  const e = await pool.call(addr, "Echo.Hang", null, { timeoutMs: 100 }).catch((x: RpcError) => x);
  expect((e as RpcError).code).toBe("TIMEOUT");
  await waitFor(() => cancelledOnServer > before, 2000, "server-side cancellation");
});

test("cancellation by AbortSignal reaches the server", async () => {
  const before = cancelledOnServer;
  const ac = new AbortController();
  const p = pool.call(addr, "Echo.Hang", null, { signal: ac.signal, timeoutMs: 10_000 });
  setTimeout(() => ac.abort(), 20);
  const e = await p.catch((x: RpcError) => x);
  expect((e as RpcError).code).toBe("CANCELLED");
  await waitFor(() => cancelledOnServer > before, 2000, "server-side cancellation");
});

test("streaming: chunks both ways, explicit end", async () => {
  const s = await pool.openStream(addr, "Echo.Upper", { n: 7 });
  const got: number[][] = [];
  const reading = (async () => {
    const out: Uint8Array[] = [];
    for await (const c of s) out.push(c);
    return out;
  })();
  for (let i = 0; i < 10; i++) await s.send(Uint8Array.of(i, i));
  await s.end();
  const out = await reading;
  for (const c of out.slice(0, 10)) got.push([...c]);
  expect(got).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]));
  expect(new TextDecoder().decode(out[10])).toBe("total 20 7");
});

test("a large chunk's frame head plus the chunk are exactly encodeFrame({Chunk}), at every CBOR length boundary", () => {
  for (const n of [0, 1, 23, 24, 255, 256, 16_383, 16_384, 65_535, 65_536, 1 << 20]) {
    const chunk = new Uint8Array(n).map((_, i) => (i * 7 + n) & 255);
    for (const c of [chunk, Buffer.from(chunk)]) {
      const head = chunkFrameHead(n);
      const joined = new Uint8Array(head.length + n);
      joined.set(head);
      joined.set(c, head.length);
      expect(Buffer.compare(Buffer.from(joined), Buffer.from(encodeFrame({ Chunk: c })))).toBe(0);
    }
  }
});

test("streaming: chunks of every size, small and sent after their frame head, arrive whole and in order", async () => {
  const s = await pool.openStream(addr, "Echo.Upper", { n: 1 });
  const sizes = [1, 16 * 1024 - 1, 16 * 1024, 100_000, 3, 1 << 20, 200_000];
  const reading = (async () => {
    const out: Uint8Array[] = [];
    for await (const c of s) out.push(c);
    return out;
  })();
  const sent = sizes.map((n) => new Uint8Array(n).map((_, i) => (i * 13 + n) & 127));
  await Promise.all(sent.map((c) => s.send(c)));
  await s.end();
  const out = await reading;
  expect(out.slice(0, sizes.length).map((c) => c.length)).toEqual(sizes);
  for (let i = 0; i < sizes.length; i++) expect(Buffer.compare(Buffer.from(out[i]!), Buffer.from(sent[i]!.map((x) => x + 1)))).toBe(0);
});

test("streaming: abort delivers the code; a handler throw does too", async () => {
  for (const [m, code] of [
    ["Echo.Abort", "DISK"],
    ["Echo.Throw", "NO_LEADER"],
  ] as const) {
    const s = await pool.openStream(addr, m, null);
    const seen: number[] = [];
    let caught: RpcError | null = null;
    try {
      for await (const c of s) seen.push(...c);
    } catch (e) {
      caught = e as RpcError;
    }
    expect(seen).toEqual([1]);
    expect(caught?.code).toBe(code);
  }
});

test("a stream whose peer hangs up without an end frame throws ABORTED", async () => {
  const srv = new RpcServer({ bindAddr: "127.0.0.1", port: 0, info: () => ({ ID: "", Name: "", Region: "", Version: "" }) });
  let hold!: () => void;
  srv.stream(
    "Hold",
    z.unknown(),
    () =>
      new Promise<void>((r) => {
        hold = r;
      }),
  );
  const { port } = await srv.listen();
  const p2 = new ConnPool();
  try {
    const s = await p2.openStream(`127.0.0.1:${port}`, "Hold", null);
    const it = (async () => {
      for await (const _ of s) {
        /* none */
      }
    })();
    await waitFor(() => hold !== undefined, 2000, "handler start");
    await srv.close(0);
    const e = await it.then(
      () => null,
      (x: RpcError) => x,
    );
    expect(e?.code).toBe("ABORTED");
  } finally {
    hold?.();
    await p2.close();
  }
});

test("1,000 concurrent unary calls on one session", async () => {
  const calls = Array.from({ length: 1000 }, (_, i) => pool.call(addr, "Echo.Add", { a: i, b: 1 }));
  const res = (await Promise.all(calls)) as Array<{ sum: number }>;
  expect(res.map((r) => r.sum)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
});
