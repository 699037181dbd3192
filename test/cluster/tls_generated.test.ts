// Mutual TLS set up only with the binary's own commands, as the README shows: `node tls ca create`
// once, `node tls cert create -server` per server. A three-server cluster of the compiled binary with
// tls.http and tls.rpc forms, elects a leader and replicates over HTTPS; the CLI talks to it with a
// `-client` certificate; a client certificate of the same CA is not taken as a server on the RPC
// port; and a server certificate for region "east" is refused both ways by the "global" servers.
import { describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { allocPorts, https, run, startConfigured, tlsHcl } from "./configured.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import type { RpcError } from "../../src/transport/rpc_error.ts";
import { type Cluster, useCluster, waitFor, withLogs, type ClusterServer, type VarReply } from "./harness.ts";

const cluster = useCluster("tlsgen", { start: startTlsCluster });
let bin: string;
let pki: string;
let caFile: string;
let ca: string;
let servers: ClusterServer[] = [];

/** Runs `node tls ...` of the compiled binary in `dir`. */
const tlsCmd = (dir: string, ...args: string[]) => run([bin, "tls", ...args], dir);

/** A server certificate made by `node tls cert create -server` in a directory of its own. */
function serverCert(label: string, region = "global"): { cert: string; key: string } {
  const dir = join(pki, label);
  mkdirSync(dir);
  tlsCmd(dir, "cert", "create", "-server", "-region", region, "-ca", caFile, "-key", join(pki, "edgenode-agent-ca-key.pem"));
  return { cert: join(dir, `${region}-server-edgenode.pem`), key: join(dir, `${region}-server-edgenode-key.pem`) };
}

async function tlsLeader(among: ClusterServer[], timeoutMs = 20_000): Promise<ClusterServer> {
  const addr = await waitFor(
    "a leader every TLS server agrees on",
    timeoutMs,
    async () => {
      const seen = await Promise.all(
        among.map((s) =>
          https<string>(s, ca, "GET", "/v1/status/leader", undefined, 2000).then(
            (r) => (r.status === 200 ? r.body : ""),
            () => "",
          ),
        ),
      );
      const first = seen[0];
      return first && seen.every((l) => l === first) ? first : undefined;
    },
    100,
  );
  const s = among.find((x) => x.rpcAddr === addr);
  if (!s) throw new Error(`leader ${addr} is not one of the given servers`);
  return s;
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: RpcError) => `${e.code ?? "?"}: ${e.message}`,
  );

async function startTlsCluster(c: Cluster): Promise<void> {
  await c.init();
  bin = join(c.dir, "node");
  pki = join(c.dir, "pki");
  mkdirSync(pki);
  tlsCmd(pki, "ca", "create");
  caFile = join(pki, "edgenode-agent-ca.pem");
  ca = readFileSync(caFile, "utf8");
  const certs = [serverCert("s1"), serverCert("s2"), serverCert("s3")];
  servers = startConfigured(c, allocPorts(3), (i) => tlsHcl({ ca: caFile, ...certs[i]! }));
  await tlsLeader(servers, 30_000);
}

describe("TLS with certificates from node tls", () => {
  test(
    "three servers form a cluster, elect a leader and replicate a write over HTTPS",
    () =>
      withLogs(cluster, async () => {
        const leader = await tlsLeader(servers);
        for (const s of servers) {
          const peers = await https<string[]>(s, ca, "GET", "/v1/status/peers");
          expect(peers.status).toBe(200);
          expect([...peers.body].sort()).toEqual(servers.map((x) => x.rpcAddr).sort());
        }
        const follower = servers.find((s) => s !== leader)!;
        const put = await https<VarReply>(follower, ca, "PUT", "/v1/var/gen/a", { Items: { made: "by node tls" } });
        expect(`${put.status} ${put.text}`).toStartWith("200");
        for (const s of servers) {
          await waitFor(`${s.name} to replicate the write`, 10_000, async () => {
            const r = await https<VarReply>(s, ca, "GET", "/v1/var/gen/a?stale");
            return r.status === 200 && r.body.Items?.made === "by node tls";
          });
        }
      }),
    40_000,
  );

  test(
    "the CLI reads and writes over HTTPS with a -client certificate",
    () =>
      withLogs(cluster, async () => {
        const dir = join(pki, "cli");
        mkdirSync(dir);
        tlsCmd(dir, "cert", "create", "-client", "-ca", caFile, "-key", join(pki, "edgenode-agent-ca-key.pem"));
        const leader = await tlsLeader(servers);
        const flags = [
          "-address",
          `https://127.0.0.1:${leader.httpPort}`,
          "-ca-cert",
          caFile,
          "-client-cert",
          join(dir, "global-client-edgenode.pem"),
          "-client-key",
          join(dir, "global-client-edgenode-key.pem"),
        ];
        run([bin, "var", "put", ...flags, "gen/cli", "who=client-cert"]);
        const got = JSON.parse(run([bin, "var", "get", "-json", ...flags, "gen/cli"])) as VarReply;
        expect(got.Items).toEqual({ who: "client-cert" });
        // The CLI verified the server's certificate: without the CA it refuses to talk.
        const withoutCa = flags.filter((_, i) => i !== 2 && i !== 3);
        const p = Bun.spawnSync([bin, "var", "get", ...withoutCa, "gen/cli"], { stdout: "pipe", stderr: "pipe" });
        expect(p.exitCode).toBe(1);
      }),
    30_000,
  );

  test(
    "a -client certificate of the same CA is not a server on the RPC port",
    () =>
      withLogs(cluster, async () => {
        const dir = join(pki, "rpc-client");
        mkdirSync(dir);
        tlsCmd(dir, "cert", "create", "-client", "-ca", caFile, "-key", join(pki, "edgenode-agent-ca-key.pem"));
        const leader = await tlsLeader(servers);
        const asClient = new ConnPool({
          tls: {
            cert: readFileSync(join(dir, "global-client-edgenode.pem"), "utf8"),
            key: readFileSync(join(dir, "global-client-edgenode-key.pem"), "utf8"),
            ca,
            serverName: "server.global.edgenode",
          },
        });
        const s1 = readFileSync(join(pki, "s1", "global-server-edgenode.pem"), "utf8");
        const asServer = new ConnPool({
          tls: {
            cert: s1,
            key: readFileSync(join(pki, "s1", "global-server-edgenode-key.pem"), "utf8"),
            ca,
            serverName: "server.global.edgenode",
          },
        });
        try {
          // The same call with a server certificate is answered: the refusal is about the certificate.
          expect(await code(asServer.call(leader.rpcAddr, "Status.Ping", undefined))).toBe("ok");
          expect(await code(asClient.call(leader.rpcAddr, "Status.Ping", undefined))).not.toBe("ok");
        } finally {
          await asClient.close();
          await asServer.close();
        }
      }),
    30_000,
  );

  test(
    "a server certificate for region east is refused by the global servers, accepting and dialling",
    () =>
      withLogs(cluster, async () => {
        const leader = await tlsLeader(servers);
        const east = serverCert("east", "east");
        const impostor = cluster.add({ join: servers.map((s) => s.rpcAddr) });
        appendFileSync(impostor.configPath, tlsHcl({ ca: caFile, ...east }));
        impostor.start();
        await waitFor(
          "the impostor's HTTPS API",
          10_000,
          async () => (await https(impostor, ca, "GET", "/v1/status/leader", undefined, 1000).catch(() => ({ status: 0 }))).status > 0,
        );
        // Dialling it as a global server would (expecting server.global.edgenode) fails on its certificate.
        const asGlobal = new ConnPool({
          tls: {
            cert: readFileSync(join(pki, "s1", "global-server-edgenode.pem"), "utf8"),
            key: readFileSync(join(pki, "s1", "global-server-edgenode-key.pem"), "utf8"),
            ca,
            serverName: "server.global.edgenode",
          },
        });
        try {
          const dialled = await code(asGlobal.call(impostor.rpcAddr, "Status.Ping", undefined));
          expect(dialled).not.toBe("ok");
          expect(dialled).toMatch(/server\.global\.edgenode|altnames|hostname/i);
        } finally {
          await asGlobal.close();
        }
        // Its own retry_join rounds (500 ms apart) never get it into the configuration.
        const until = performance.now() + 4_000;
        while (performance.now() < until) {
          const conf = await https<{ Servers: { Address: string }[] }>(leader, ca, "GET", "/v1/operator/raft/configuration");
          expect(conf.status).toBe(200);
          expect(conf.body.Servers.map((x) => x.Address).sort()).toEqual(servers.map((s) => s.rpcAddr).sort());
          await Bun.sleep(250);
        }
        expect((await https<string>(impostor, ca, "GET", "/v1/status/leader")).body).toBe("");
        await impostor.kill();
      }),
    40_000,
  );
});
