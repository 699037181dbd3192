// A new cluster from a snapshot file (issue #25 item 2): a saved file seeds one empty data directory
// offline (`operator snapshot restore -offline`); that server starts as a new one-server cluster and
// two more with empty directories join it and catch up by InstallSnapshot. All three hold exactly the
// saved state (every variable with its indexes and items, every ACL token and policy), under a new
// cluster id, with every index they hand out above the file's. A non-empty directory, a damaged file
// and a held directory are refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileChunks, readSnapshotHeader } from "../../src/snapshot/reader.ts";
import { Cluster, type ClusterServer, ok, waitFor, withLogs } from "./harness.ts";

const ACL_HCL = "acl {\n  enabled = true\n}\n";
const READ_RULES = `variables {\n  path "app/*" { capabilities = ["read", "list"] }\n}\n`;
const VARS = 60;

let src: Cluster;
let dst: Cluster;
let mgmt = "";
let readerSecret = "";
let file = "";
let fileIndex = 0;
let fileCluster = "";
let saved = "";

async function req(
  s: ClusterServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; text: string }> {
  const r = await fetch(`${s.url}${path}`, {
    method,
    headers: { "X-Edgenode-Token": mgmt, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}

async function must(s: ClusterServer, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await req(s, method, path, body);
  ok({ status: r.status, text: r.text }, `${method} ${path} on ${s.name}`);
  return r.json;
}

/** Everything the state holds, read on `s` alone (stale): variables with indexes and items, tokens, policies. */
async function stateOf(s: ClusterServer): Promise<string> {
  const vars = (await must(s, "GET", "/v1/vars?stale&per_page=1000")) as { Path: string }[];
  const rows: unknown[] = [];
  for (const v of [...vars].sort((a, b) => (a.Path < b.Path ? -1 : 1))) rows.push(await must(s, "GET", `/v1/var/${v.Path}?stale`));
  const tokens = (await must(s, "GET", "/v1/acl/tokens?stale")) as { AccessorID: string }[];
  const fullTokens: unknown[] = [];
  for (const t of [...tokens].sort((a, b) => (a.AccessorID < b.AccessorID ? -1 : 1)))
    fullTokens.push(await must(s, "GET", `/v1/acl/token/${t.AccessorID}?stale`));
  const policies = (await must(s, "GET", "/v1/acl/policies?stale")) as { Name: string }[];
  const fullPolicies: unknown[] = [];
  for (const p of [...policies].sort((a, b) => (a.Name < b.Name ? -1 : 1)))
    fullPolicies.push(await must(s, "GET", `/v1/acl/policy/${p.Name}?stale`));
  return JSON.stringify({ vars: rows, tokens: fullTokens, policies: fullPolicies }, null, 1);
}

async function run(binary: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([binary, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

beforeAll(async () => {
  // The saved cluster: one server with ACLs, variables, a policy and a client token.
  dst = new Cluster("offline-dst");
  await dst.init();
  src = new Cluster("offline-src");
  await src.init();
  const a = src.add({ bootstrapExpect: 1 });
  appendFileSync(a.configPath, ACL_HCL);
  a.start();
  await a.waitHttp();
  await src.waitForLeader(20_000);
  const boot = await waitFor("ACL bootstrap", 10_000, async () => {
    const r = await req(a, "POST", "/v1/acl/bootstrap");
    return r.status === 200 ? (r.json as { SecretID: string }) : undefined;
  });
  mgmt = boot.SecretID;
  await must(a, "PUT", "/v1/acl/policy/app-read", { Rules: READ_RULES, Description: "reads app" });
  readerSecret = (
    (await must(a, "POST", "/v1/acl/token", { Name: "reader", Type: "client", Policies: ["app-read"] })) as { SecretID: string }
  ).SecretID;
  for (let i = 0; i < VARS; i++) await must(a, "PUT", `/v1/var/app/v${i}`, { Items: { i: String(i), pad: "x".repeat(i * 7) } });
  await must(a, "DELETE", "/v1/var/app/v3");
  saved = await stateOf(a);
  file = join(dst.dir, "saved.snap");
  const r = await fetch(`${a.url}/v1/operator/snapshot`, { headers: { "X-Edgenode-Token": mgmt }, signal: AbortSignal.timeout(60_000) });
  expect(r.status).toBe(200);
  writeFileSync(file, new Uint8Array(await r.arrayBuffer()));
  const h = await readSnapshotHeader(fileChunks(file));
  fileIndex = h.index;
  fileCluster = h.clusterId;
  await src.cleanup();
}, 120_000);

afterAll(async () => {
  await src?.cleanup();
  await dst?.cleanup();
});

describe("snapshot restore -offline", () => {
  test("refuses a damaged file and a non-empty directory, leaving the directory as it was", async () => {
    await withLogs(dst, async () => {
      const dir = join(dst.dir, "refusals");
      const bad = join(dst.dir, "bad.snap");
      const bytes = readFileSync(file);
      bytes[bytes.length - 40] = (bytes[bytes.length - 40] ?? 0) ^ 0xff;
      writeFileSync(bad, bytes);
      const r1 = await run(dst.binaryPath, [
        "operator",
        "snapshot",
        "restore",
        "-offline",
        "-data-dir",
        dir,
        "-advertise",
        "127.0.0.1:1",
        bad,
      ]);
      expect(r1.code).toBe(1);
      expect(r1.err).toContain("Error restoring the snapshot offline:");
      // Nothing of a server was written: only the command's lock file.
      expect(readdirSync(dir)).toEqual(["agent.lock"]);
      mkdirSync(join(dir, "raft"));
      const r2 = await run(dst.binaryPath, [
        "operator",
        "snapshot",
        "restore",
        "-offline",
        "-data-dir",
        dir,
        "-advertise",
        "127.0.0.1:1",
        file,
      ]);
      expect(r2.code).toBe(1);
      expect(r2.err).toContain(`data directory ${dir} is not empty (raft)`);
      expect(readdirSync(dir).sort()).toEqual(["agent.lock", "raft"]);
      expect(readdirSync(join(dir, "raft"))).toEqual([]);
      // Without -offline, the offline flags are a mistake, not ignored.
      const r3 = await run(dst.binaryPath, ["operator", "snapshot", "restore", "-data-dir", dir, file]);
      expect(r3.code).toBe(1);
      expect(r3.err).toContain("-data-dir is only for -offline");
    });
  }, 60_000);

  test("three empty servers booted from the file hold exactly the saved state, under a new cluster id, above the file's index", async () => {
    await withLogs(dst, async () => {
      const a = dst.add({ bootstrapExpect: 0, join: [] });
      appendFileSync(a.configPath, ACL_HCL);
      const seeded = await run(dst.binaryPath, ["operator", "snapshot", "restore", "-offline", "-config", a.configPath, file]);
      expect(seeded.err).toBe("");
      expect(seeded.code).toBe(0);
      expect(seeded.out).toContain(`Old cluster ID = ${fileCluster}`);
      expect(seeded.out).toContain(`Starts at      = index ${fileIndex + 1}, term`);
      a.start();
      await a.waitHttp();
      await dst.waitForLeader(20_000, [a]);
      expect(a.log()).toContain('starting on a data directory changed offline by "snapshot restore -offline"');
      const m = (await must(a, "GET", "/v1/metrics")) as { Counters: { Name: string; Count: number; Labels: Record<string, string> }[] };
      expect(m.Counters.filter((x) => x.Name === "edgenode_offline_operations_total")).toEqual([
        { Name: "edgenode_offline_operations_total", Count: 1, Labels: { op: "snapshot restore -offline" } },
      ]);
      // Two more with empty directories, joining the seeded one.
      const b = dst.add({ bootstrapExpect: 0, join: [a.rpcAddr] });
      const c = dst.add({ bootstrapExpect: 0, join: [a.rpcAddr] });
      for (const s of [b, c]) {
        appendFileSync(s.configPath, ACL_HCL);
        s.start();
      }
      await Promise.all([b.waitHttp(), c.waitHttp()]);
      await dst.waitForLeader(30_000);
      await waitFor("three voters", 30_000, async () => {
        const r = (await must(a, "GET", "/v1/operator/raft/configuration")) as { Servers: { Voter: boolean }[] };
        return r.Servers.length === 3 && r.Servers.every((s) => s.Voter) ? true : undefined;
      });
      for (const s of [a, b, c]) {
        const got = await waitFor(`${s.name} holds the saved state`, 30_000, async () => {
          const st = await stateOf(s).catch(() => "");
          return st === saved ? st : undefined;
        }).catch(async () => stateOf(s));
        expect(got).toBe(saved);
      }
      // ACLs stay bootstrapped: the file's bootstrap is part of the state.
      expect((await req(b, "POST", "/v1/acl/bootstrap")).status).toBe(400);
      // The reader's token from the file works on the new cluster.
      const read = await fetch(`${c.url}/v1/var/app/v7`, { headers: { "X-Edgenode-Token": readerSecret } });
      expect(read.status).toBe(200);
      const write = await fetch(`${c.url}/v1/var/app/v7`, {
        method: "PUT",
        body: JSON.stringify({ Items: { a: "b" } }),
        headers: { "X-Edgenode-Token": readerSecret },
      });
      expect(write.status).toBe(403);
      // Every index handed out now is above the file's: a new write, the read index, a new snapshot.
      const put = (await must(b, "PUT", "/v1/var/app/after", { Items: { n: "1" } })) as { ModifyIndex: number };
      expect(put.ModifyIndex).toBeGreaterThan(fileIndex + 1);
      const r = await fetch(`${a.url}/v1/operator/snapshot`, {
        headers: { "X-Edgenode-Token": mgmt },
        signal: AbortSignal.timeout(60_000),
      });
      expect(r.status).toBe(200);
      const again = join(dst.dir, "again.snap");
      writeFileSync(again, new Uint8Array(await r.arrayBuffer()));
      const h = await readSnapshotHeader(fileChunks(again));
      expect(h.index).toBeGreaterThan(fileIndex);
      expect(h.clusterId).not.toBe("");
      expect(h.clusterId).not.toBe(fileCluster);
      expect(seeded.out).toContain(`New cluster ID = ${h.clusterId}`);
    });
  }, 180_000);

  test("refuses a directory an agent holds", async () => {
    await withLogs(dst, async () => {
      const a = dst.servers[0]!;
      const r = await run(dst.binaryPath, ["operator", "snapshot", "restore", "-offline", "-config", a.configPath, file]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`in use by another process (PID ${a.proc?.pid}, agent)`);
    });
  }, 60_000);
});
