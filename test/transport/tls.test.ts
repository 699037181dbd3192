// TLS on the RPC port: 0x04 preamble then handshake, mutual TLS, an untrusted
// client certificate refused, a plaintext dial to a TLS-only server refused cleanly, and a TLS dial
// to a silent listener ended at its timeout.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ConnPool } from "../../src/transport/pool.ts";
import type { RpcError } from "../../src/transport/rpc_error.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import type { TlsOptions } from "../../src/transport/tls_options.ts";
import { requireTool } from "../support/tools.ts";
import { waitFor } from "../support/wait.ts";
import { DialError } from "../../src/transport/dial.ts";
import { dialTls } from "../../src/transport/tls_wire.ts";

let openssl = "";

let dir = "";
let good: TlsOptions;
let rogue: TlsOptions;
let server: RpcServer;
let addr = "";

function makeCert(name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const r = Bun.spawnSync(
    [
      openssl,
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
}

beforeAll(async () => {
  openssl = requireTool("openssl", "openssl");
  dir = mkdtempSync(join(tmpdir(), "edgenode-tls-"));
  const a = makeCert("node-a");
  const b = makeCert("rogue");
  good = { ...a, ca: a.cert, verifyIncoming: true };
  rogue = { ...b, ca: a.cert };
  server = new RpcServer({ bindAddr: "127.0.0.1", port: 0, tls: good, info: () => ({ ID: "tls", Name: "t", Region: "r", Version: "v" }) });
  server.stream("Echo.Stream", z.unknown(), async (_a, _c, stream) => {
    for await (const c of stream) await stream.send(c);
  });
  addr = `127.0.0.1:${(await server.listen()).port}`;
});

afterAll(async () => {
  await server?.close(0);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("mutual TLS: Status.Ping and a 4 MiB echo stream", async () => {
  const pool = new ConnPool({ tls: good });
  try {
    expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "tls" });
    const s = await pool.openStream(addr, "Echo.Stream", null);
    const chunk = new Uint8Array(64 * 1024).fill(5);
    const reading = (async () => {
      let n = 0;
      for await (const c of s) n += c.length;
      return n;
    })();
    for (let i = 0; i < 64; i++) await s.send(chunk);
    await s.end();
    expect(await reading).toBe(64 * chunk.length);
  } finally {
    await pool.close();
  }
});

test("an untrusted client certificate is refused", async () => {
  const pool = new ConnPool({ tls: rogue, dialTimeoutMs: 3000 });
  const e = await pool.call(addr, "Status.Ping", undefined, { timeoutMs: 3000 }).then(
    () => null,
    (x: RpcError) => x,
  );
  expect(e).not.toBeNull();
  expect(["UNAVAILABLE", "ABORTED", "TIMEOUT"]).toContain(e!.code);
  if (e!.code === "UNAVAILABLE") expect(e!.message).not.toContain("options");
  await pool.close();
});

test("a plaintext dial to a TLS-only server is refused cleanly and quickly", async () => {
  const pool = new ConnPool();
  const e = await pool.call(addr, "Status.Ping", undefined, { timeoutMs: 5000 }).then(
    () => null,
    (x: RpcError) => x,
  );
  expect(e).not.toBeNull();
  // Refused, not left to run into the call's deadline.
  expect(e!.code).not.toBe("TIMEOUT");
  // the server is still up for TLS clients
  const ok = new ConnPool({ tls: good });
  expect(await ok.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "tls" });
  await ok.close();
  await pool.close();
});

test("a TLS dial to a listener that never answers the handshake fails at its timeout and hangs up", async () => {
  const seen = { bytes: 0, closed: false };
  const silent = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, chunk) {
        seen.bytes += chunk.length;
      },
      close() {
        seen.closed = true;
      },
    },
  });
  try {
    const to = `127.0.0.1:${silent.port}`;
    const t0 = performance.now();
    const e = await dialTls(to, good, { keepaliveIntervalMs: 0 }, 300).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(DialError);
    expect((e as Error).message).toBe(`dial ${to} (TLS): timed out after 300 ms`);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    // The preamble and a ClientHello went out before the silence.
    expect(seen.bytes).toBeGreaterThan(1);
    await waitFor(() => seen.closed, 5_000, "the dialler to close the socket");
  } finally {
    silent.stop(true);
  }
});
