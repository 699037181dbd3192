// limits { http_max_conns_per_client, rpc_max_conns_per_client } on a real agent: with a limit of 2,
// the third concurrent HTTP request from one address gets 429 while the two in flight are answered,
// and the third RPC connection from one address is refused while two are open; both free up after.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnPool } from "../../src/transport/pool.ts";
import { compiledBinary } from "../cluster/harness.ts";
import { startDevBinary, type DevBinary } from "../support/dev_binary.ts";
import { waitFor } from "../support/wait.ts";

const LIMIT = 2;

let work = "";
let agent: DevBinary | undefined;
const pools: ConnPool[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "edgenode-limits-"));
  const binary = await compiledBinary(work);
  agent = await startDevBinary(binary, {
    dir: work,
    extraHcl: `limits {\n  http_max_conns_per_client = ${LIMIT}\n  rpc_max_conns_per_client = ${LIMIT}\n}\n`,
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  agent?.proc.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

test(`http: the request beyond ${LIMIT} in flight from one client gets 429; the others are answered`, async () => {
  const a = agent!;
  const put = await fetch(`${a.url}/v1/var/limits/x`, { method: "PUT", body: JSON.stringify({ Items: { v: "1" } }) });
  expect(put.status).toBe(200);
  const index = ((await put.json()) as { ModifyIndex: number }).ModifyIndex;
  const blocking = Array.from({ length: LIMIT }, () => fetch(`${a.url}/v1/var/limits/x?index=${index}&wait=3s`).then((r) => r.status));
  const refusal = await waitFor(
    async () => {
      const r = await fetch(`${a.url}/v1/status/leader`).catch(() => undefined);
      return r?.status === 429 ? await r.text() : undefined;
    },
    10_000,
    `a request beyond the ${LIMIT} in flight to get 429`,
  );
  expect(refusal).toContain(`limit ${LIMIT}`);
  expect(await Promise.all(blocking)).toEqual(Array(LIMIT).fill(200));
  // The slots are free again.
  expect((await fetch(`${a.url}/v1/status/leader`)).status).toBe(200);
}, 60_000);

test(`rpc: the connection beyond ${LIMIT} open from one client is refused; one closing lets the next in`, async () => {
  const addr = `127.0.0.1:${agent!.rpcPort}`;
  const ping = (p: ConnPool) =>
    p.call(addr, "Status.Ping", undefined, { timeoutMs: 3_000 }).then(
      () => "ok",
      (e: Error) => `refused: ${e.message}`,
    );
  const open = Array.from({ length: LIMIT }, () => new ConnPool());
  pools.push(...open);
  for (const p of open) expect(await ping(p)).toBe("ok");
  const extra = new ConnPool();
  pools.push(extra);
  expect(await ping(extra)).toStartWith("refused");
  await waitFor(() => /rpc: refused \d+ conn_limit/.test(agent!.log()), 5_000, "the agent to log the refusal");
  const metrics = (await (await fetch(`${agent!.url}/v1/metrics`)).json()) as {
    Counters: { Name: string; Count: number; Labels: Record<string, string> }[];
  };
  const refused = metrics.Counters.find(
    (c) => c.Name === "edgenode_connections_refused_total" && c.Labels.port === "rpc" && c.Labels.reason === "conn_limit",
  );
  expect(refused?.Count).toBeGreaterThanOrEqual(1);
  // The sessions that were let in still work.
  for (const p of open) expect(await ping(p)).toBe("ok");
  await open[0]!.close();
  await waitFor(
    async () => {
      const next = new ConnPool();
      try {
        return (await ping(next)) === "ok";
      } finally {
        await next.close();
      }
    },
    10_000,
    "a new connection once one of the two closed",
  );
}, 60_000);
