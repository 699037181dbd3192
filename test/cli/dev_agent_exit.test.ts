// README: `-dev` keeps its data "in a temporary directory, removed on exit". The compiled binary
// runs -dev with TMPDIR pointed at a directory of the test's own, writes, and is stopped with
// SIGINT and with SIGTERM: it exits 0 and leaves that directory empty.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary } from "../cluster/harness.ts";
import { startDevBinary, type DevBinary } from "../support/dev_binary.ts";

let work = "";
let binary = "";
const agents: DevBinary[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "edgenode-dev-exit-"));
  binary = await compiledBinary(work);
}, 120_000);

afterAll(() => {
  for (const a of agents) a.proc.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  test(`-dev removes its temporary data directory when stopped with ${signal}`, async () => {
    const dir = join(work, signal);
    const tmp = join(dir, "tmp");
    mkdirSync(tmp, { recursive: true });
    const agent = await startDevBinary(binary, { dir, env: { TMPDIR: tmp } });
    agents.push(agent);
    expect(agent.dataDir.startsWith(join(tmp, "edgenode-dev-"))).toBe(true);
    const put = await fetch(`${agent.url}/v1/var/app/x`, { method: "PUT", body: JSON.stringify({ Items: { a: "1" } }) });
    expect(put.status).toBe(200);
    // The directory holds the server's files while it runs: its removal below is the agent's doing.
    expect(readdirSync(agent.dataDir).length).toBeGreaterThan(0);
    agent.proc.kill(signal);
    expect(await agent.exited).toBe(0);
    expect(agent.log()).toContain("shutdown complete");
    expect(existsSync(agent.dataDir)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);
}
