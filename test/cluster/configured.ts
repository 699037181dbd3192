// Harness clusters with extra HCL (federation, TLS) appended to each server's config, an openssl-made
// CA with server certificates, and HTTPS/raw-TCP probes for the tests of locks, regions and TLS.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "../support/tools.ts";
import { type Cluster, type ClusterServer, freePort, ok, unreachableAs, waitFor, type ServerOptions } from "./harness.ts";

/** Ports for `n` servers, chosen before any config is written so that configs can name each other. */
export function allocPorts(n: number): { http: number; rpc: number }[] {
  return Array.from({ length: n }, () => ({ http: freePort(), rpc: freePort() }));
}

/**
 * Adds `ports.length` servers that all know each other and expect that many for bootstrap, appends
 * `extra(i)` to server i's config, and starts them. Does not wait for HTTP (a TLS cluster needs HTTPS).
 */
export function startConfigured(
  cluster: Cluster,
  ports: { http: number; rpc: number }[],
  extra: (i: number) => string,
  opts: ServerOptions = {},
): ClusterServer[] {
  const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
  const added = ports.map((p, i) => {
    const s = cluster.add({ bootstrapExpect: ports.length, ...opts, ports: p, join: all });
    appendFileSync(s.configPath, extra(i));
    return s;
  });
  for (const s of added) s.start();
  return added;
}

/** Waits until every given server names the same non-empty leader (plain HTTP); returns the leader. */
export async function leaderAmong(servers: ClusterServer[], timeoutMs = 15_000): Promise<ClusterServer> {
  const addr = await waitFor("a leader every server agrees on", timeoutMs, async () => {
    const seen = await Promise.all(servers.map((s) => s.leader().catch(unreachableAs(""))));
    const first = seen[0];
    // A killed leader is still named by the survivors until they notice: it must be one of `servers`.
    return first && seen.every((l) => l === first) && servers.some((s) => s.rpcAddr === first) ? first : undefined;
  });
  const s = servers.find((x) => x.rpcAddr === addr);
  if (!s) throw new Error(`leader ${addr} is not one of the given servers`);
  return s;
}

/** Runs a command and returns its stdout; throws with stderr unless it exits 0. */
/** Three servers with ACLs on (init included), a leader they agree on, and the management token of the bootstrap. */
export async function startAclServers(c: Cluster): Promise<{ servers: ClusterServer[]; mgmt: string }> {
  await c.init();
  const servers = startConfigured(c, allocPorts(3), () => "acl {\n  enabled = true\n}\n");
  await Promise.all(servers.map((s) => s.waitHttp(20_000)));
  await leaderAmong(servers, 20_000);
  const s0 = servers[0];
  if (!s0) throw new Error("no server");
  const boot = await fetch(`${s0.url}/v1/acl/bootstrap`, { method: "POST" });
  return { servers, mgmt: ((await boot.json()) as { SecretID: string }).SecretID };
}

/** An API call to `s` with `token`, refused unless it answers 2xx (ok()). */
export async function callWithToken(token: string, s: ClusterServer, method: string, path: string, body?: unknown) {
  const r = await fetch(`${s.url}${path}`, {
    method,
    headers: { "X-Edgenode-Token": token },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  return ok({ status: r.status, text: await r.text() }, `${method} ${path}`);
}

export function run(cmd: string[], cwd?: string): string {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${p.exitCode}): ${p.stderr.toString()}`);
  return p.stdout.toString();
}

export interface Pki {
  ca: string;
  caFile: string;
  /** Paths of a server certificate and key for `server.<region>.edgenode` with IP SAN 127.0.0.1. */
  server(region: string, label?: string): { cert: string; key: string };
}

/** A throwaway CA in `dir` (EC P-256, made with openssl) that issues server certificates on demand. */
export function makePki(dir: string): Pki {
  const caKey = join(dir, "ca.key");
  const caFile = join(dir, "ca.pem");
  requireTool("openssl", "openssl");
  run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKey]);
  run(["openssl", "req", "-x509", "-new", "-key", caKey, "-sha256", "-days", "2", "-subj", "/CN=edgenode test CA", "-out", caFile]);
  let serial = 0;
  return {
    caFile,
    ca: readFileSync(caFile, "utf8"),
    server(region: string, label = region) {
      serial++;
      const base = join(dir, `server-${label}-${serial}`);
      const key = `${base}.key`;
      const csr = `${base}.csr`;
      const cert = `${base}.pem`;
      const ext = `${base}.ext`;
      writeFileSync(ext, `subjectAltName=DNS:server.${region}.edgenode,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n`);
      run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
      run(["openssl", "req", "-new", "-key", key, "-subj", `/CN=server.${region}.edgenode`, "-out", csr]);
      run([
        "openssl",
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        caFile,
        "-CAkey",
        caKey,
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        ext,
        "-out",
        cert,
      ]);
      return { cert, key };
    },
  };
}

/** HCL for a server with HTTPS and mutual-TLS RPC. */
export function tlsHcl(p: { ca: string; cert: string; key: string }): string {
  return `tls {
  http = true
  rpc  = true
  ca_file   = "${p.ca}"
  cert_file = "${p.cert}"
  key_file  = "${p.key}"
  verify_server_hostname = true
}
`;
}

/** An HTTPS request to a server, verifying it against `ca`; parses JSON bodies. */
export async function https<T = unknown>(
  s: ClusterServer,
  ca: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<{ status: number; body: T; text: string }> {
  const r = await fetch(`https://127.0.0.1:${s.httpPort}${path}`, {
    method,
    signal: AbortSignal.timeout(timeoutMs),
    tls: { ca },
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } } : {}),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain-text error bodies stay strings
  }
  return { status: r.status, body: parsed as T, text };
}

/**
 * Opens a TCP connection, writes `bytes`, and resolves with what came back (its first bytes) once the server closed the
 * connection (`closed`), or with `closed: false` if it was still open after `timeoutMs`.
 */
export async function probeTcp(port: number, bytes: Uint8Array, timeoutMs = 5_000): Promise<{ closed: boolean; received: Uint8Array }> {
  const MAX_KEPT = 4096;
  let received = new Uint8Array(0);
  let closed = false;
  let onClose: () => void = () => {};
  const done = new Promise<void>((res) => (onClose = res));
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        // Keep the first bytes only: enough to tell what the server answered.
        if (received.length < MAX_KEPT) {
          const next = new Uint8Array(Math.min(MAX_KEPT, received.length + d.length));
          next.set(received);
          next.set(d.subarray(0, next.length - received.length), received.length);
          received = next;
        }
      },
      close() {
        closed = true;
        onClose();
      },
      error() {
        closed = true;
        onClose();
      },
    },
  });
  sock.write(bytes);
  const timer = setTimeout(onClose, timeoutMs);
  await done;
  clearTimeout(timer);
  if (!closed) sock.end();
  return { closed, received };
}
