// var lock against a fake server: CMD's exit code, renewals at TTL/2 and release; CMD killed when a
// renewal is refused or when renewals fail for a whole TTL; acquisition refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/cli/cli.ts";
import { captureIo } from "./capture_io.ts";

type RenewMode = "ok" | "refuse" | "fail";
let renewMode: RenewMode = "ok";
let acquireHeld = false;
const calls: { op: string; at: number; body: string }[] = [];
let server: ReturnType<typeof Bun.serve>;
const dir = mkdtempSync(join(tmpdir(), "edgenode-cli-lock-"));

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      const op = ["lock-acquire", "lock-renew", "lock-release"].find((k) => url.searchParams.has(k)) ?? req.method;
      calls.push({ op, at: performance.now(), body });
      const v = { Path: "job/a", Items: {}, CreateIndex: 1, ModifyIndex: 1, CreateTime: 0, ModifyTime: 0 };
      if (op === "lock-acquire") {
        if (acquireHeld) return Response.json(v, { status: 409 });
        return Response.json({ ...v, Lock: { ID: "lock-1", TTL: 1000, LockDelay: 0 } });
      }
      if (op === "lock-renew") {
        if (renewMode === "refuse") return new Response("lock is not held", { status: 409 });
        if (renewMode === "fail") return new Response("no leader", { status: 503 });
        return Response.json({ ...v, Lock: { ID: "lock-1", TTL: 1000, LockDelay: 0 } });
      }
      if (op === "lock-release") return Response.json(v);
      return new Response("unexpected", { status: 400 });
    },
  });
});
afterAll(() => {
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

async function lock(args: string[]) {
  calls.length = 0;
  const io = captureIo({ EDGENODE_ADDR: `http://127.0.0.1:${server.port}` });
  const start = performance.now();
  const code = await runCli(["var", "lock", ...args], io);
  return { code, out: io.stdout(), err: io.stderr(), ms: performance.now() - start };
}

/**
 * A shell command that waits to be killed and writes "TERM" to `marker` when SIGTERM comes, or "DONE"
 * if it ever finishes its 60 s: the marker says which of the two ended it.
 */
function untilKilled(marker: string): string {
  return `trap 'kill $! 2>/dev/null; echo TERM > ${marker}; exit 143' TERM; sleep 60 & wait; echo DONE > ${marker}`;
}

describe("var lock", () => {
  test("runs CMD, renews every TTL/2, releases, and exits with CMD's code", async () => {
    renewMode = "ok";
    const marker = join(dir, "ran");
    const r = await lock(["-ttl", "1s", "job/a", "--", "sh", "-c", `echo "$EDGENODE_LOCK_PATH" > ${marker}; sleep 1.3; exit 7`]);
    expect(r.err).toBe("");
    expect(r.code).toBe(7);
    expect(readFileSync(marker, "utf8").trim()).toBe("job/a");
    const ops = calls.map((c) => c.op);
    expect(ops[0]).toBe("lock-acquire");
    expect(JSON.parse(calls[0]!.body)).toEqual({ Lock: { TTL: "1000ms" } });
    expect(ops.filter((o) => o === "lock-renew").length).toBeGreaterThanOrEqual(2);
    expect(ops[ops.length - 1]).toBe("lock-release");
    expect(JSON.parse(calls[calls.length - 1]!.body)).toEqual({ Lock: { ID: "lock-1" } });
  });

  test("a refused renewal kills CMD and exits 1", async () => {
    renewMode = "refuse";
    try {
      const marker = join(dir, "refused");
      const r = await lock(["-ttl", "1s", "job/a", "--", "sh", "-c", untilKilled(marker)]);
      expect(r.code).toBe(1);
      expect(r.err).toContain('Error holding the lock on "job/a": the lock was lost');
      expect(readFileSync(marker, "utf8").trim()).toBe("TERM");
      expect(calls.some((c) => c.op === "lock-release")).toBe(false);
    } finally {
      renewMode = "ok";
    }
  });

  test("renewals failing for a whole TTL count as a lost lock", async () => {
    renewMode = "fail";
    try {
      const marker = join(dir, "failed");
      const r = await lock(["-ttl", "1s", "job/a", "--", "sh", "-c", untilKilled(marker)]);
      expect(r.code).toBe(1);
      expect(r.err).toContain("could not renew within the TTL");
      expect(r.err).toContain('Error renewing the lock on "job/a":');
      expect(r.err).toContain("; retrying in 250 ms");
      expect(readFileSync(marker, "utf8").trim()).toBe("TERM");
      expect(r.ms).toBeGreaterThanOrEqual(1_000);
      expect(calls.filter((c) => c.op === "lock-renew").length).toBeGreaterThanOrEqual(2);
    } finally {
      renewMode = "ok";
    }
  });

  test("a held lock: exit 1 without running CMD", async () => {
    acquireHeld = true;
    try {
      const marker = join(dir, "never");
      const r = await lock(["job/a", "--", "touch", marker]);
      expect(r.code).toBe(1);
      expect(r.err).toContain('Error acquiring the lock on "job/a": Unexpected response code: 409');
      expect(existsSync(marker)).toBe(false);
    } finally {
      acquireHeld = false;
    }
  });

  test("bad input: no command, bad ttl, bad path", async () => {
    expect((await lock(["job/a"])).err).toContain("missing the command to run");
    const ttl = await lock(["-ttl", "100ms", "job/a", "--", "true"]);
    expect(ttl.code).toBe(1);
    expect(ttl.err).toContain("-ttl must be between 1s and 24h");
    expect((await lock(["-ttl", "soon", "job/a", "--", "true"])).err).toContain('invalid duration "soon"');
    expect((await lock(["/bad", "--", "true"])).err).toContain('invalid variable path "/bad"');
    expect(calls).toHaveLength(0);
  });
});
