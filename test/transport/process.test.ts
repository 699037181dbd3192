// Transport against a server in another process: a large stream to a slow
// reader keeps both processes' memory bounded; keepalive notices a SIGSTOPped peer.
// EDGENODE_LONG=1 sends the full 1 GiB (default 128 MiB).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ConnPool } from "../../src/transport/pool.ts";
import { waitFor } from "./fixtures/mem_wire.ts";

let child: Subprocess<"ignore", "pipe", "pipe">;
let addr = "";

beforeAll(async () => {
  child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures/rpc_child.ts")], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = performance.now() + 10_000;
  while (!/PORT \d+/.test(text)) {
    if (performance.now() > deadline) throw new Error(`child did not start: ${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited: ${text} ${await new Response(child.stderr).text()}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  addr = `127.0.0.1:${/PORT (\d+)/.exec(text)![1]}`;
});

afterAll(() => {
  child.kill("SIGCONT");
  child.kill("SIGKILL");
});

const LONG = process.env.EDGENODE_LONG === "1";
const TOTAL = LONG ? 1024 * 1024 * 1024 : 128 * 1024 * 1024;

test(
  `a ${TOTAL >> 20} MiB stream to a slow reader keeps both processes' memory bounded`,
  async () => {
    const pool = new ConnPool();
    try {
      const startRss = process.memoryUsage().rss;
      const s = await pool.openStream(addr, "Sink", { slowEvery: 16 });
      const chunk = new Uint8Array(64 * 1024).fill(7);
      let maxRss = startRss;
      for (let sent = 0; sent < TOTAL; sent += chunk.length) {
        await s.send(chunk);
        if (sent % (8 << 20) === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
      }
      await s.end();
      const replies: Uint8Array[] = [];
      for await (const c of s) replies.push(c);
      const report = JSON.parse(new TextDecoder().decode(replies[0])) as { total: number; peakRss: number };
      expect(report.total).toBe(TOTAL);
      // Windows are 256 KiB: neither side may hold more than a few MiB of it.
      expect(report.peakRss).toBeLessThan(200 * 1024 * 1024);
      // The sender's growth is sampled during the stream: its lifetime peak (VmHWM) belongs to whatever
      // other test files ran earlier in the same `bun test` process.
      expect(maxRss - startRss).toBeLessThan(100 * 1024 * 1024);
    } finally {
      await pool.close();
    }
  },
  LONG ? 300_000 : 60_000,
);

test("keepalive detects a SIGSTOPped peer within its timeout", async () => {
  const pool = new ConnPool({ mux: { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 400 } });
  try {
    expect(await pool.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "child" });
    const session = await pool.session(addr);
    await waitFor(() => !Number.isNaN(session.rttMs), 2000, "first keepalive");
    child.kill("SIGSTOP");
    await waitFor(() => session.closed, 3000, "keepalive to notice the stopped peer");
    expect(session.closeReason).toContain("keepalive");
  } finally {
    child.kill("SIGCONT");
    await pool.close();
  }
  // the pool dials a fresh session once the peer is back
  const pool2 = new ConnPool();
  expect(await pool2.call(addr, "Status.Ping", undefined)).toMatchObject({ ID: "child" });
  await pool2.close();
}, 20_000);
