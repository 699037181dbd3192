// The CLI as a real process against a fake agent: stdout holds only results, errors go to stderr
// with exit 1, `k=-` reads stdin, and `var lock` forwards SIGTERM to CMD and still releases.
// Plus the progress line, which is drawn only when stderr is a TTY.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { progressLine } from "../../src/cli/progress.ts";
import { waitFor } from "../support/wait.ts";
import { captureIo } from "./capture_io.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const dir = mkdtempSync(join(tmpdir(), "edgenode-cli-proc-"));
const calls: { op: string; url: URL; body: string }[] = [];
let server: ReturnType<typeof Bun.serve>;
const children: ReturnType<typeof Bun.spawn>[] = [];

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      const op = ["lock-acquire", "lock-renew", "lock-release"].find((k) => url.searchParams.has(k)) ?? req.method;
      calls.push({ op, url, body });
      const v = { Path: url.pathname.slice("/v1/var/".length), Items: {}, CreateIndex: 1, ModifyIndex: 4, CreateTime: 0, ModifyTime: 0 };
      if (url.pathname === "/v1/var/denied") return new Response("Permission denied", { status: 403 });
      if (op === "lock-acquire" || op === "lock-renew") return Response.json({ ...v, Lock: { ID: "L", TTL: 2000, LockDelay: 0 } });
      if (op === "PUT") return Response.json({ ...v, Items: (JSON.parse(body) as { Items: Record<string, string> }).Items });
      return Response.json(v);
    },
  });
});
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

function spawnCli(args: string[], stdin?: string) {
  const p = Bun.spawn([process.execPath, MAIN, ...args], {
    env: { ...process.env, EDGENODE_ADDR: `http://127.0.0.1:${server.port}` },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(p);
  return p;
}

async function result(p: ReturnType<typeof spawnCli>) {
  const [out, err, code] = await Promise.all([
    new Response(p.stdout as ReadableStream).text(),
    new Response(p.stderr as ReadableStream).text(),
    p.exited,
  ]);
  return { out, err, code };
}

describe("the CLI process", () => {
  test("k=- reads the value from stdin; only the result is on stdout", async () => {
    const r = await result(spawnCli(["var", "put", "app/in", "v=-", "w=2"], "from stdin\n"));
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toBe('Wrote variable "app/in" (modify index 4)\n');
    expect(JSON.parse(calls[calls.length - 1]!.body)).toEqual({ Items: { v: "from stdin\n", w: "2" } });
  }, 15_000);

  test("an error: exit 1, one Error line on stderr, nothing on stdout", async () => {
    const r = await result(spawnCli(["var", "get", "denied"]));
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toBe("Error reading the variable: Unexpected response code: 403 (Permission denied)\n");
  }, 15_000);

  test("var lock forwards SIGTERM to CMD, exits with its code and releases the lock", async () => {
    calls.length = 0;
    const marker = join(dir, "term");
    const p = spawnCli([
      "var",
      "lock",
      "job/sig",
      "--",
      "sh",
      "-c",
      `trap 'echo got > ${marker}; exit 5' TERM; echo ready > ${marker}.ready; while true; do sleep 0.05; done`,
    ]);
    await waitFor(() => Bun.file(`${marker}.ready`).exists(), 10_000, "CMD to start under the lock");
    p.kill("SIGTERM");
    const r = await result(p);
    expect(r.code).toBe(5);
    expect((await Bun.file(marker).text()).trim()).toBe("got");
    expect(calls.map((c) => c.op)).toContain("lock-release");
  }, 15_000);
});

describe("snapshot save interrupted", () => {
  test("SIGINT mid-download removes FILE.tmp and exits 1", async () => {
    // A download that never ends: one chunk every 20 ms.
    const slow = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 0,
      fetch: () =>
        new Response(
          new ReadableStream({
            async pull(ctl) {
              await Bun.sleep(20);
              ctl.enqueue(new Uint8Array(4096));
            },
          }),
          { headers: { Digest: "sha-256=AAAA", "X-Edgenode-Index": "1" } },
        ),
    });
    try {
      const file = join(dir, "interrupted.snap");
      const p = Bun.spawn([process.execPath, MAIN, "operator", "snapshot", "save", "-address", `http://127.0.0.1:${slow.port}`, file], {
        stdout: "pipe",
        stderr: "pipe",
      });
      children.push(p);
      await waitFor(
        async () => (await Bun.file(`${file}.tmp`).exists()) && Bun.file(`${file}.tmp`).size > 0,
        10_000,
        "the download to start",
      );
      p.kill("SIGINT");
      const r = await result(p);
      expect(r.code).toBe(1);
      expect(r.err).toContain("Error saving the snapshot: interrupted after");
      expect(await Bun.file(`${file}.tmp`).exists()).toBe(false);
      expect(await Bun.file(file).exists()).toBe(false);
    } finally {
      slow.stop(true);
    }
  }, 15_000);
});

describe("progress line", () => {
  test("drawn on a TTY with bytes, rate and elapsed; absent otherwise", () => {
    const drawn: string[] = [];
    const tty = { ...captureIo(), errIsTTY: true };
    const p = progressLine(tty, "Downloaded", (s) => drawn.push(s));
    p.add(3 << 20);
    p.done();
    expect(drawn.join("")).toMatch(/\rDownloaded 3\.0 MiB \([\d.]+ \w+\/s, [\d.]+s\)/);
    expect(drawn[drawn.length - 1]).toBe("\n");
    const quiet: string[] = [];
    const q = progressLine(captureIo(), "Downloaded", (s) => quiet.push(s));
    q.add(100);
    q.done();
    expect(quiet).toEqual([]);
  });
});
