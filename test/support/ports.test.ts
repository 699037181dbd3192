// Leased test ports: outside the OS's ephemeral range, never the same twice in a process, and never
// the same in two processes that lease at the same moment.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.ts";

test("ports come from below the ephemeral range and are never handed out twice in a process", () => {
  const lo = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  const ports = Array.from({ length: 200 }, () => freePort());
  expect(new Set(ports).size).toBe(200);
  for (const p of ports) expect(p < lo && p >= 10_000).toBe(true);
});

test("four processes leasing 300 ports each at once share none", async () => {
  const script = `import { freePort } from ${JSON.stringify(join(import.meta.dir, "ports.ts"))};
const out = []; for (let i = 0; i < 300; i++) out.push(freePort()); console.log(JSON.stringify(out));
for await (const _ of console) break;`;
  // Each holds its leases (stays alive) until every one has printed its ports.
  const procs = Array.from({ length: 4 }, () =>
    Bun.spawn([process.execPath, "-e", script], { stdin: "pipe", stdout: "pipe", stderr: "inherit" }),
  );
  const readers = procs.map((p) => p.stdout.getReader());
  const lists = await Promise.all(
    readers.map(async (r) => {
      let text = "";
      while (!text.endsWith("\n")) {
        const { value, done } = await r.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      return JSON.parse(text) as number[];
    }),
  );
  for (const p of procs) {
    p.stdin.write("done\n");
    p.stdin.end();
  }
  await Promise.all(procs.map((p) => p.exited));
  const all = lists.flat();
  expect(all).toHaveLength(1200);
  expect(new Set(all).size).toBe(1200);
}, 60_000);
