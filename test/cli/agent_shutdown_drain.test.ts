// README: "SIGINT/SIGTERM shut a server down gracefully". A blocking query in flight when SIGINT
// arrives gets its answer; meanwhile the HTTP port refuses new connections; the agent exits 0.
// The per-client limit of 1 is the probe that the query is in flight: a second request is refused
// with 429 only while the first is being served.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary } from "../cluster/harness.ts";
import { startDevBinary, type DevBinary } from "../support/dev_binary.ts";
import { waitFor } from "../support/wait.ts";

/** Still in flight after SIGINT, and within the agent's 3 s grace (which starts after the query did). */
const BLOCK = "2500ms";

let work = "";
let agent: DevBinary | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "edgenode-drain-"));
  const binary = await compiledBinary(work);
  agent = await startDevBinary(binary, { dir: work, extraHcl: "limits {\n  http_max_conns_per_client = 1\n}\n" });
}, 120_000);

afterAll(() => {
  agent?.proc.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

/** True once a TCP connection to `port` is refused (the listener is closed). */
async function refused(port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    return false;
  } catch {
    return true;
  }
}

test("SIGINT: a blocking query in flight is answered, new connections are refused, exit 0", async () => {
  const a = agent!;
  const put = await fetch(`${a.url}/v1/var/drain/x`, { method: "PUT", body: JSON.stringify({ Items: { v: "1" } }) });
  expect(put.status).toBe(200);
  const index = ((await put.json()) as { ModifyIndex: number }).ModifyIndex;
  let answeredAt = 0;
  const blocking = fetch(`${a.url}/v1/var/drain/x?index=${index}&wait=${BLOCK}`).then(async (r) => {
    answeredAt = performance.now();
    return { status: r.status, body: (await r.json()) as { Items: Record<string, string> } };
  });
  await waitFor(
    async () => {
      const r = await fetch(`${a.url}/v1/status/leader`).catch(() => undefined);
      return r?.status === 429;
    },
    10_000,
    "the blocking query to hold the client's only slot",
  );
  a.proc.kill("SIGINT");
  await waitFor(() => refused(a.httpPort), 10_000, "the HTTP port to refuse new connections after SIGINT");
  const refusedAt = performance.now();
  const answer = await blocking;
  expect(answer.status).toBe(200);
  expect(answer.body.Items).toEqual({ v: "1" });
  // The answer came after the port was already closed: it was drained, not served before the signal.
  expect(answeredAt).toBeGreaterThan(refusedAt);
  expect(await a.exited).toBe(0);
  expect(a.log()).toContain("caught signal; shutting down: signal=SIGINT");
  expect(a.log()).toContain("shutdown complete");
}, 60_000);
