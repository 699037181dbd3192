// `insecure_rpc = true` is warned about at start and then again on every interval (hourly in
// production; shortened here); without it the same server refuses to start.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromSources } from "../../src/config/load.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { Server } from "../../src/server/server.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

const dir = mkdtempSync(join(tmpdir(), "edgenode-insecure-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function server(insecure: boolean, sub: string, lines: string[]): Server {
  const text = `data_dir = "${join(dir, sub)}"\nbind_addr = "0.0.0.0"\nadvertise { rpc = "127.0.0.1" }\nports { http = ${freePort()}  rpc = ${freePort()} }\nserver { insecure_rpc = ${insecure} }\n`;
  const config = configFromSources([{ file: "test.hcl", text }]);
  return new Server({ config, logger: createLogger({ level: "WARN", write: (l) => void lines.push(l) }), insecureWarningMs: 150 });
}

const warnings = (lines: string[]) =>
  lines.filter((l) => l.includes("insecure_rpc: the RPC port accepts unauthenticated server sessions")).length;

test("the warning comes at start and again every interval", async () => {
  const lines: string[] = [];
  const s = server(true, "a", lines);
  await s.start();
  try {
    expect(warnings(lines)).toBeGreaterThanOrEqual(1);
    await waitFor(() => warnings(lines) >= 3, 5_000, "two more warnings");
  } finally {
    await s.shutdown();
  }
});

test("without insecure_rpc the same server refuses to start, and says how to fix it", async () => {
  const lines: string[] = [];
  const s = server(false, "b", lines);
  await expect(s.start()).rejects.toThrow("server { insecure_rpc = true }");
  await s.shutdown();
  expect(warnings(lines)).toBe(0);
});
