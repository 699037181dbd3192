// TLS against compiled servers: a CA and certificates made with openssl; a three-server cluster with
// tls.http and tls.rpc forms and serves HTTPS; a server holding a certificate for another region is
// refused while the cluster keeps working; plaintext RPC and plain HTTP are refused.
import { describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as net from "node:net";
import * as tls from "node:tls";
import { allocPorts, https, makePki, probeTcp, run, startConfigured, tlsHcl, type Pki } from "./configured.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import type { RpcError } from "../../src/transport/rpc_error.ts";
import { type Cluster, useCluster, waitFor, withLogs, type ClusterServer, type VarReply } from "./harness.ts";

let pki: Pki;
let servers: ClusterServer[] = [];
let southPorts: { http: number; rpc: number };

/** The leader every given server names over HTTPS. */
async function tlsLeader(among: ClusterServer[], timeoutMs = 20_000): Promise<ClusterServer> {
  const addr = await waitFor(
    "a leader every TLS server agrees on",
    timeoutMs,
    async () => {
      const seen = await Promise.all(
        among.map((s) =>
          https<string>(s, pki.ca, "GET", "/v1/status/leader", undefined, 2000).then(
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
  const s = cluster.servers.find((x) => x.rpcAddr === addr);
  if (!s) throw new Error(`leader ${addr} is not one of this cluster's servers`);
  return s;
}

const cluster = useCluster("tls", { start: startTls });

async function startTls(c: Cluster): Promise<void> {
  await c.init();
  pki = makePki(c.dir);
  const ports = allocPorts(3);
  // Region "south" is federated (its server starts in its own test); "east" is not.
  southPorts = allocPorts(1)[0]!;
  servers = startConfigured(c, ports, () => {
    const cert = pki.server("global");
    return `${tlsHcl({ ca: pki.caFile, ...cert })}federation {\n  region "south" { servers = ["127.0.0.1:${southPorts.rpc}"] }\n}\n`;
  });
  await tlsLeader(servers, 30_000);
}

/** A yamux Ping (version 0, type 2, flags SYN) after the plaintext mux preamble 0x01. */
function plaintextMuxPing(): Uint8Array {
  const b = new Uint8Array(13);
  b[0] = 0x01;
  b[2] = 2;
  b[4] = 1;
  b[12] = 7;
  return b;
}

/** Dials the RPC port with the TLS preamble and a TLS client without a certificate; resolves how it ended. */
function tlsWithoutClientCert(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      raw.destroy();
      resolve("still open");
    }, 5_000);
    const done = (why: string) => {
      clearTimeout(timer);
      raw.destroy();
      resolve(why);
    };
    raw.on("error", (e) => done(`error: ${e.message}`));
    raw.once("connect", () => {
      raw.write(Uint8Array.of(0x04));
      const t = tls.connect({ socket: raw, ca, servername: "server.global.edgenode" });
      t.on("error", (e) => done(`error: ${e.message}`));
      t.on("close", () => done("closed"));
      // TLS 1.3 finishes the client side before the server checks the certificate: write and wait.
      t.once("secureConnect", () => t.write(plaintextMuxPing()));
      t.on("data", () => done("answered"));
    });
  });
}

describe("TLS cluster", () => {
  test(
    "three servers with tls.rpc and tls.http form a cluster and serve HTTPS",
    () =>
      withLogs(cluster, async () => {
        const leader = await tlsLeader(servers);
        for (const s of servers) {
          const peers = await https<string[]>(s, pki.ca, "GET", "/v1/status/peers");
          expect(peers.status).toBe(200);
          expect([...peers.body].sort()).toEqual(servers.map((x) => x.rpcAddr).sort());
        }
        const f = servers.find((s) => s !== leader)!;
        const put = await https<VarReply>(f, pki.ca, "PUT", "/v1/var/tls/a", { Items: { over: "tls" } });
        expect(put.status).toBe(200);
        for (const s of servers) {
          const r = await https<VarReply>(s, pki.ca, "GET", "/v1/var/tls/a");
          expect(r.status).toBe(200);
          expect(r.body.Items).toEqual({ over: "tls" });
        }
      }),
    30_000,
  );

  test(
    "plain HTTP to the HTTPS port and HTTPS without trusting the CA both fail",
    () =>
      withLogs(cluster, async () => {
        const s = servers[0]!;
        const plain = await fetch(`http://127.0.0.1:${s.httpPort}/v1/status/leader`, { signal: AbortSignal.timeout(5_000) }).then(
          (r) => `status ${r.status}`,
          (e: Error) => `error ${e.message}`,
        );
        expect(plain.startsWith("error") || plain === "status 400").toBe(true);
        expect(plain).not.toBe("status 200");
        const untrusted = await fetch(`https://127.0.0.1:${s.httpPort}/v1/status/leader`, { signal: AbortSignal.timeout(5_000) }).then(
          (r) => `status ${r.status}`,
          (e: Error) => `error ${e.message}`,
        );
        expect(untrusted).toStartWith("error");
      }),
    20_000,
  );

  test(
    "a plaintext RPC client is refused: the connection is closed without an answer",
    () =>
      withLogs(cluster, async () => {
        for (const s of servers) {
          const r = await probeTcp(s.rpcPort, plaintextMuxPing());
          expect(r.closed).toBe(true);
          // Nothing, or a yamux GoAway (type 3) with a protocol-error code — never a Ping ACK.
          if (r.received.length > 0) {
            expect(r.received.length).toBe(12);
            expect(r.received[1]).toBe(3);
          }
        }
        // TLS without a client certificate is refused too (mutual TLS).
        const why = await tlsWithoutClientCert(servers[0]!.rpcPort, pki.ca);
        expect(why).not.toBe("answered");
        expect(why).not.toBe("still open");
        // The servers are still up and leading.
        await tlsLeader(servers);
      }),
    30_000,
  );

  test(
    "a request for a federated region is forwarded over mutual TLS, each side checking the other's region name",
    () =>
      withLogs(cluster, async () => {
        await tlsLeader(servers);
        const globalAddrs = servers.map((s) => `"${s.rpcAddr}"`).join(", ");
        const [south] = startConfigured(cluster, [southPorts], () => {
          const c = pki.server("south");
          return `region = "south"\n${tlsHcl({ ca: pki.caFile, ...c })}federation {\n  region "global" { servers = [${globalAddrs}] }\n}\n`;
        }) as [ClusterServer];
        await tlsLeader([south]);
        const put = await https<VarReply>(south, pki.ca, "PUT", "/v1/var/tls/from-south?region=global", { Items: { via: "south" } });
        expect(`${put.status} ${put.text}`).toStartWith("200");
        expect((await https<VarReply>(servers[0]!, pki.ca, "GET", "/v1/var/tls/from-south")).body.Items).toEqual({ via: "south" });
        expect((await https(south, pki.ca, "GET", "/v1/var/tls/from-south")).status).toBe(404);
        await https(south, pki.ca, "PUT", "/v1/var/tls/in-south", { Items: { home: "south" } });
        const get = await https<VarReply>(servers[1]!, pki.ca, "GET", "/v1/var/tls/in-south?region=south");
        expect(`${get.status} ${get.text}`).toStartWith("200");
        expect(get.body.Items).toEqual({ home: "south" });
        await south.kill();
      }),
    30_000,
  );

  test(
    "a federated region's server may forward requests but not call raft, membership or staging RPCs",
    () =>
      withLogs(cluster, async () => {
        const leader = await tlsLeader(servers);
        const south = pki.server("south", "south-caller");
        const own = pki.server("global", "global-caller");
        const pool = (c: { cert: string; key: string }) =>
          new ConnPool({
            tls: {
              cert: readFileSync(c.cert, "utf8"),
              key: readFileSync(c.key, "utf8"),
              ca: readFileSync(pki.caFile, "utf8"),
              serverName: "server.global.edgenode",
            },
          });
        const fromSouth = pool(south);
        const fromGlobal = pool(own);
        const code = (p: Promise<unknown>) =>
          p.then(
            () => "ok",
            (e: RpcError) => e.code,
          );
        try {
          expect(await fromSouth.call(leader.rpcAddr, "Status.Ping", undefined)).toMatchObject({ Region: "global" });
          // A forwarded request is served.
          expect(await code(fromSouth.call(leader.rpcAddr, "Endpoint.Call", { method: "Status.Leader", args: {}, q: {} }))).toBe("ok");
          // Region-internal calls are refused before their arguments are looked at.
          for (const m of ["Cluster.Join", "Cluster.Discover"]) {
            expect(await code(fromSouth.call(leader.rpcAddr, m, { id: "x", address: "127.0.0.1:1", name: "x" }))).toBe("PERMISSION_DENIED");
          }
          expect(await code(fromSouth.openStream(leader.rpcAddr, "Raft.Messages", { from: "impostor" }))).toBe("PERMISSION_DENIED");
          // The same call from this region's certificate reaches the handler (which refuses the bad arguments itself).
          const fetchStaged = (p: ConnPool) =>
            (async () => {
              const st = await p.openStream(leader.rpcAddr, "Snapshot.FetchStaged", { id: "no-such-id" });
              for await (const _ of st) {
                // a missing staged file sends nothing before its error
              }
            })();
          expect(await code(fetchStaged(fromSouth))).toBe("PERMISSION_DENIED");
          expect(await code(fetchStaged(fromGlobal))).toBe("NOT_FOUND");
        } finally {
          await fromSouth.close();
          await fromGlobal.close();
        }
      }),
    30_000,
  );

  test(
    "a client certificate of the same CA is not a server: it cannot join, discover or speak raft",
    () =>
      withLogs(cluster, async () => {
        const leader = await tlsLeader(servers);
        // What `node tls cert create -client` makes: the cluster's CA, named client.global.edgenode.
        const base = join(cluster.dir, "client-global");
        writeFileSync(`${base}.ext`, "subjectAltName=DNS:client.global.edgenode,IP:127.0.0.1\nextendedKeyUsage=clientAuth\n");
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${base}.key`]);
        run(["openssl", "req", "-new", "-key", `${base}.key`, "-subj", "/CN=client.global.edgenode", "-out", `${base}.csr`]);
        run([
          "openssl",
          "x509",
          "-req",
          "-in",
          `${base}.csr`,
          "-CA",
          pki.caFile,
          "-CAkey",
          join(cluster.dir, "ca.key"),
          "-CAcreateserial",
          "-days",
          "2",
          "-sha256",
          "-extfile",
          `${base}.ext`,
          "-out",
          `${base}.pem`,
        ]);
        const pool = new ConnPool({
          tls: {
            cert: readFileSync(`${base}.pem`, "utf8"),
            key: readFileSync(`${base}.key`, "utf8"),
            ca: pki.ca,
            serverName: "server.global.edgenode",
          },
          backoffBaseMs: 1,
        });
        const refused = (p: Promise<unknown>) =>
          p.then(
            () => "ok",
            (e: Error) => e.message,
          );
        try {
          for (const [m, args] of [
            ["Cluster.Join", { id: "x", address: "127.0.0.1:1", name: "x" }],
            ["Cluster.Discover", { id: "x", address: "127.0.0.1:1", name: "x" }],
          ] as const) {
            expect(await refused(pool.call(leader.rpcAddr, m, args, { timeoutMs: 3_000 }))).not.toBe("ok");
          }
          expect(await refused(pool.openStream(leader.rpcAddr, "Raft.Messages", { from: "impostor" }, { timeoutMs: 3_000 }))).not.toBe(
            "ok",
          );
          const cfg = await https<{ Servers: unknown[] }>(leader, pki.ca, "GET", "/v1/operator/raft/configuration");
          expect(cfg.body.Servers).toHaveLength(3);
          const refusals = await https<{ Counters: { Name: string; Count: number; Labels: Record<string, string> }[] }>(
            leader,
            pki.ca,
            "GET",
            "/v1/metrics",
          );
          expect(
            refusals.body.Counters.find(
              (c) => c.Name === "edgenode_connections_refused_total" && c.Labels.reason === "tls_handshake_failed",
            )?.Count ?? 0,
          ).toBeGreaterThanOrEqual(1);
        } finally {
          await pool.close();
        }
      }),
    30_000,
  );

  test(
    "a server with a certificate for another region is refused while the cluster keeps working",
    () =>
      withLogs(cluster, async () => {
        const leader = await tlsLeader(servers);
        const bad = pki.server("east", "impostor");
        const impostor = cluster.add({ join: servers.map((s) => s.rpcAddr) });
        appendFileSync(impostor.configPath, tlsHcl({ ca: pki.caFile, ...bad }));
        impostor.start();
        await waitFor(
          "the impostor's HTTPS API",
          10_000,
          async () => (await https(impostor, pki.ca, "GET", "/v1/status/leader", undefined, 1000)).status > 0,
        );
        // Long enough for several retry_join rounds (500 ms apart) and raft traffic: watch the
        // configuration the whole time; it must never take the impostor in.
        const until = performance.now() + 6_000;
        while (performance.now() < until) {
          const conf = await https<{ Servers: { Address: string }[] }>(leader, pki.ca, "GET", "/v1/operator/raft/configuration");
          expect(conf.status).toBe(200);
          expect(conf.body.Servers.map((x) => x.Address)).not.toContain(impostor.rpcAddr);
          await Bun.sleep(250);
        }
        expect((await https<string>(impostor, pki.ca, "GET", "/v1/status/leader")).body).toBe("");
        expect((await https<string[]>(leader, pki.ca, "GET", "/v1/status/peers")).body).toHaveLength(3);
        // Its RPCs are refused: a write through it cannot reach the leader.
        const viaImpostor = await https(impostor, pki.ca, "PUT", "/v1/var/tls/impostor", { Items: { a: "b" } }, 15_000);
        expect(viaImpostor.status).not.toBe(200);
        // The cluster still works.
        const put = await https<VarReply>(leader, pki.ca, "PUT", "/v1/var/tls/after", { Items: { still: "ok" } });
        expect(put.status).toBe(200);
        for (const s of servers)
          await waitFor(
            `${s.name} to replicate the write`,
            10_000,
            async () => (await https<VarReply>(s, pki.ca, "GET", "/v1/var/tls/after?stale")).status === 200,
          );
        await impostor.kill();
      }),
    60_000,
  );
});
