// One in-process server (raft, state, RPC) with the HTTP app and the ACL module, as the agent
// composes them, on free ports and a temporary data directory.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromSources } from "../../src/config/load.ts";
import { aclGuard, aclRoutes } from "../../src/http/acl.ts";
import { createApp } from "../../src/http/app.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Acl } from "../../src/server/acl.ts";
import { Server } from "../../src/server/server.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

export { freePort };

export interface Agent {
  server: Server;
  acl: Acl;
  /** Base URL of the HTTP listener. */
  url: string;
  req(
    method: string,
    path: string,
    opts?: { token?: string; bearer?: string; body?: unknown },
  ): Promise<{ status: number; text: string; json: () => any }>;
  stop(): Promise<void>;
}

/** `extraHcl` is appended to the configuration (e.g. a server block for a cluster); `rpc` picks the RPC port. */
export async function startAgent(
  aclEnabled: boolean,
  opts: { extraHcl?: string; rpc?: number; waitLeader?: boolean } = {},
): Promise<Agent> {
  const dir = await mkdtemp(join(tmpdir(), "edgenode-acl-"));
  const rpc = opts.rpc ?? freePort();
  const text = `acl { enabled = ${aclEnabled} }\nports { http = ${freePort()}  rpc = ${rpc} }\nlog_level = "ERROR"\n${opts.extraHcl ?? ""}`;
  const config = configFromSources([{ file: "test.hcl", text }], { dev: true, dataDir: dir });
  const server = new Server({ config, logger: silentLogger() });
  const acl = Acl.install(server);
  await server.start();
  const app = createApp(server, { maxRequestBody: config.limits.max_request_body, maxConnsPerClient: 1000, extra: [aclRoutes] });
  const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: aclGuard(server, (r) => app.fetch(r)) });
  const url = `http://127.0.0.1:${http.port}`;
  if (opts.waitLeader !== false) await waitFor(() => server.health().ok, 15_000, "the server to see a leader");
  return {
    server,
    acl,
    url,
    async req(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.token) headers["X-Edgenode-Token"] = opts.token;
      if (opts.bearer) headers.Authorization = `Bearer ${opts.bearer}`;
      const res = await fetch(url + path, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
      const t = await res.text();
      return { status: res.status, text: t, json: () => JSON.parse(t) };
    },
    async stop() {
      http.stop(true);
      await server.shutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
