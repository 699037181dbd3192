// README: "with verify_server_hostname (the default) a server's certificate must name
// server.<region>.edgenode". The check when a server DIALS: a peer (a test RPC server over mutual TLS
// that accepts any certificate of the CA) holds a certificate for server.east.edgenode; a real
// server of region global with it in retry_join refuses the connection (the peer never gets a call),
// and with verify_server_hostname = false calls it. End to end, with the check off a server holding
// another region's certificate is let into a cluster.
import { afterAll, expect, test } from "bun:test";
import { appendFileSync, readFileSync } from "node:fs";
import { z } from "zod";
import { RpcServer } from "../../src/transport/rpc_server.ts";
import { allocPorts, https, makePki, startConfigured, tlsHcl, type Pki } from "./configured.ts";
import { type Cluster, useCluster, waitFor, withLogs, type ClusterServer } from "./harness.ts";

const cluster = useCluster("tls-peer-name", { start: initWithPeer });
let pki: Pki;
let peer: RpcServer;
let peerAddr = "";
/** The calls the wrongly named peer received: each one is a connection the dialler let through. */
let discovers = 0;

async function initWithPeer(c: Cluster): Promise<void> {
  await c.init();
  pki = makePki(c.dir);
  const east = pki.server("east", "wrong-name-peer");
  peer = new RpcServer({
    bindAddr: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(east.cert, "utf8"), key: readFileSync(east.key, "utf8"), ca: pki.ca, verifyIncoming: true },
    info: () => ({ ID: "wrong-name-peer", Name: "peer", Region: "east", Version: "test" }),
  });
  peer.unary("Cluster.Discover", z.unknown(), async () => {
    discovers++;
    return { region: "east" };
  });
  peerAddr = `127.0.0.1:${(await peer.listen()).port}`;
}

afterAll(async () => {
  await peer?.close(0);
});

function withVerify(hcl: string, verify: boolean): string {
  return hcl.replace("verify_server_hostname = true", `verify_server_hostname = ${verify}`);
}

/** A server of region global whose only retry_join address is the wrongly named peer. */
function dialler(verify: boolean): ClusterServer {
  const s = cluster.add({ bootstrapExpect: 2, join: [peerAddr] });
  appendFileSync(s.configPath, withVerify(tlsHcl({ ca: pki.caFile, ...pki.server("global", `dialler-${verify}`) }), verify));
  s.start();
  return s;
}

test(
  "verify_server_hostname: a server refuses to talk to a peer whose certificate names another region",
  () =>
    withLogs(cluster, async () => {
      discovers = 0;
      const s = dialler(true);
      // Three refused dials, retry_join rounds apart: time enough for a call to have reached the peer.
      // (A call reaching the peer ends the wait at once, and fails below.)
      await waitFor(`${s.name} to refuse the peer's certificate three times`, 30_000, () => {
        const refusals = s
          .log()
          .split("\n")
          .filter((l) => l.includes(`dial ${peerAddr} failed`) && l.includes("server.global.edgenode"));
        return discovers > 0 || refusals.some((l) => /\(([3-9]|\d\d+) in a row\)/.test(l));
      });
      expect(discovers).toBe(0);
      expect(peer.sessionCount).toBe(0);
      await s.kill();
    }),
  60_000,
);

test(
  "verify_server_hostname = false: the same peer is dialled and called",
  () =>
    withLogs(cluster, async () => {
      discovers = 0;
      const s = dialler(false);
      await waitFor(`${s.name} to call the peer`, 30_000, () => discovers > 0);
      expect(s.log()).not.toContain(`dial ${peerAddr} failed`);
      await s.kill();
    }),
  60_000,
);

test(
  "verify_server_hostname = false: a server holding another region's certificate joins the cluster",
  () =>
    withLogs(cluster, async () => {
      const ports = allocPorts(3);
      const servers = startConfigured(cluster, ports, (i) => {
        const c = i === 2 ? pki.server("east", "odd-one") : pki.server("global", `member-${i}`);
        return withVerify(tlsHcl({ ca: pki.caFile, ...c }), false);
      });
      const odd = servers[2]!;
      await waitFor("one leader all three servers, the odd one included, agree on", 30_000, async () => {
        const seen = await Promise.all(
          servers.map((s) =>
            https<string>(s, pki.ca, "GET", "/v1/status/leader", undefined, 2000).then(
              (r) => (r.status === 200 ? r.body : ""),
              () => "",
            ),
          ),
        );
        return seen[0] !== "" && seen.every((l) => l === seen[0]);
      });
      const peers = await https<string[]>(odd, pki.ca, "GET", "/v1/status/peers");
      expect([...peers.body].sort()).toEqual(servers.map((x) => x.rpcAddr).sort());
      const put = await https(servers[0]!, pki.ca, "PUT", "/v1/var/tls/odd", { Items: { in: "yes" } });
      expect(put.status).toBe(200);
      await waitFor("the odd one to apply the write", 15_000, async () => {
        const r = await https<{ Items: Record<string, string> }>(odd, pki.ca, "GET", "/v1/var/tls/odd?stale", undefined, 2000).catch(
          () => undefined,
        );
        return r?.status === 200 && r.body.Items.in === "yes";
      });
    }),
  90_000,
);
