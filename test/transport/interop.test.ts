// Interop with hashicorp/yamux: a Go client (built here from Debian's golang-go
// and golang-github-hashicorp-yamux-dev) pings the session, calls Status.Ping,
// opens concurrent streams, sends garbage and echoes 4 MiB. Fails without Go or the yamux source
// (.ci/run installs both).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { decode } from "../../src/lib/codec.ts";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import { requireTool } from "../support/tools.ts";

const GOPATH = "/usr/share/gocode";
const YAMUX_PKG = "golang-github-hashicorp-yamux-dev";

let dir = "";
let server: RpcServer;
let port = 0;

beforeAll(async () => {
  const goBin = requireTool("go", "golang-go");
  if (!existsSync(join(GOPATH, "src/github.com/hashicorp/yamux/session.go"))) {
    throw new Error(`hashicorp/yamux source not found under ${GOPATH}: .ci/run installs ${YAMUX_PKG} (apt-get install -y ${YAMUX_PKG})`);
  }
  dir = mkdtempSync(join(tmpdir(), "edgenode-yamux-"));
  // Pure Go (no cgo): a machine without a C compiler builds it too.
  const build = Bun.spawn([goBin, "build", "-o", join(dir, "yamux_client"), join(import.meta.dir, "fixtures/yamux_client.go")], {
    env: { ...process.env, GO111MODULE: "off", GOPATH, GOCACHE: join(dir, "cache"), GOFLAGS: "", CGO_ENABLED: "0" },
    stdout: "pipe",
    stderr: "pipe",
  });
  if ((await build.exited) !== 0) throw new Error(`go build failed: ${await new Response(build.stderr).text()}`);
  server = new RpcServer({
    bindAddr: "127.0.0.1",
    port: 0,
    info: () => ({ ID: "node-go", Name: "n1", Region: "global", Version: "0.1.0" }),
  });
  server.stream("Echo.Stream", z.unknown(), async (_a, _c, stream) => {
    for await (const c of stream) await stream.send(c);
  });
  port = (await server.listen()).port;
}, 120_000);

afterAll(async () => {
  await server?.close(0);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a hashicorp/yamux client pings, calls Status.Ping, survives garbage, echoes 4 MiB", async () => {
  const p = Bun.spawn([join(dir, "yamux_client"), `127.0.0.1:${port}`], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  const res: Record<string, unknown> = {};
  for (const line of stdout.trim().split("\n")) Object.assign(res, JSON.parse(line));
  if (code !== 0) console.error(stdout, stderr);
  expect(res.error).toBeUndefined();
  expect(code).toBe(0);
  expect(typeof res.ping_us).toBe("number");
  const reply = decode(Buffer.from(String(res.status_ping_hex), "hex"));
  expect(reply).toEqual({ Reply: { ID: "node-go", Name: "n1", Region: "global", Version: "0.1.0" } });
  expect(res.concurrent_ok).toBe(50);
  expect(res.alive_after_garbage).toBe(true);
  expect(res.echo_bytes).toBe(4 << 20);
  expect(res.done).toBe(true);
}, 60_000);
