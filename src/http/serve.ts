// The HTTP listener and the bounds on its connections: an idle timeout on every connection (kept-alive
// ones included, and a body that stops mid-way), lifted per request only for blocking queries and
// restore uploads (a restore body has its own idle bound instead), and a cap on connections per address.
//
// Bun.serve shows requests, not connections: a connection is known by its client port from its first
// request until it has been idle for the idle timeout (Bun has closed it by then). When an address
// reaches the cap, the kernel's table of established connections (Linux) is read to count them exactly,
// silent ones included, so a client that opens and closes many connections is not refused for ones gone.
// A connection that never sends a request is only bounded in time, by the idle timeout: Bun.serve
// gives no way to see or close it sooner. (A counting TCP front in JS would cost more CPU per request
// than Bun.serve's own: test/bench/RESULTS.md, cluster.)
import { readFileSync } from "node:fs";
import type { Server } from "bun";
import { BODY_IDLE_MS, HTTP_IDLE_TIMEOUT_S } from "../lib/limits.ts";
import { RefusalLog, type RefusalLogFn } from "../lib/refusal_log.ts";
import { withDeadline } from "../lib/deadline.ts";

/** The longest a blocking query can run: SPEC §3's 10 minute wait, its wait/16 jitter, and a margin. */
const BLOCKING_QUERY_TIMEOUT_S = 700;

export interface HttpServeOptions {
  hostname: string;
  port: number;
  tls?: { cert: unknown; key: unknown; ca?: unknown };
  fetch: (req: Request) => Response | Promise<Response>;
  maxConnsPerAddress: number;
  idleTimeoutS?: number;
  bodyIdleMs?: number;
  log?: RefusalLogFn;
  onRefused?: (reason: string) => void;
  /** For tests: the established connections from an address to this port, when the OS can tell. */
  kernelConnections?: (address: string, port: number) => number | undefined;
}

export interface HttpListener {
  readonly port: number;
  /** The client's address for a request this listener handed out. */
  clientIp(req: Request): string | undefined;
  refusedCounts(): Record<string, number>;
  stop(closeActive: boolean): Promise<void>;
}

const isRestore = (method: string, path: string) => path === "/v1/operator/snapshot" && (method === "PUT" || method === "POST");

interface Conn {
  inflight: number;
  /** performance.now() when its last request ended. */
  lastEnd: number;
}

export function serveHttp(o: HttpServeOptions): HttpListener {
  const idleS = o.idleTimeoutS ?? HTTP_IDLE_TIMEOUT_S;
  const bodyIdleMs = o.bodyIdleMs ?? BODY_IDLE_MS;
  const refusals = new RefusalLog("http", o.log, o.onRefused);
  const kernel = o.kernelConnections ?? establishedFrom;
  /** Known connections by address, then client port. */
  const conns = new Map<string, Map<number, Conn>>();
  const addressOf = new WeakMap<Request, string>();
  /** Addresses the kernel showed over the cap, and when: not read again for a second. */
  const overCap = new Map<string, number>();
  let server: Server<undefined>;

  /** Connections seen from `address`; ones idle past the timeout are dropped only when it reaches the cap. */
  const seenFrom = (address: string): Map<number, Conn> => {
    let m = conns.get(address);
    if (!m) {
      m = new Map();
      conns.set(address, m);
    }
    return m;
  };
  /**
   * Leaves the connections that may still be open: a request in flight, or idle for less than the
   * timeout. A walk over all of them, so it runs when a new connection finds the address at the cap,
   * not on every request (64 kept-alive clients made it a visible share of a PUT's CPU).
   */
  const sweep = (m: Map<number, Conn>, now: number): void => {
    for (const [port, c] of m) if (c.inflight === 0 && now - c.lastEnd > idleS * 1000) m.delete(port);
  };

  const refuse = (address: string, why: string): Response => {
    refusals.refuse("conn_limit", address);
    return new Response(`${why}\n`, { status: 429, headers: { "content-type": "text/plain; charset=UTF-8", connection: "close" } });
  };

  server = Bun.serve({
    hostname: o.hostname,
    port: o.port,
    // Snapshot restore bodies are unbounded; every other body is bounded by the app's own limit.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: idleS,
    ...(o.tls ? { tls: o.tls as never } : {}),
    async fetch(req, srv) {
      const ip = srv.requestIP(req);
      if (ip === null) return o.fetch(req);
      const now = performance.now();
      const m = seenFrom(ip.address);
      let c = m.get(ip.port);
      if (!c) {
        if (m.size >= o.maxConnsPerAddress) sweep(m, now);
        if (m.size >= o.maxConnsPerAddress) {
          // Ports seen may be closed already; ask the kernel how many are open before refusing.
          const seen = overCap.get(ip.address);
          const open = seen !== undefined && now - seen < 1_000 ? Infinity : kernel(ip.address, server.port ?? o.port);
          if (open === undefined || open > o.maxConnsPerAddress) {
            if (seen === undefined || now - seen >= 1_000) overCap.set(ip.address, now);
            return refuse(ip.address, `Too many connections from ${ip.address} (limit ${o.maxConnsPerAddress})`);
          }
          overCap.delete(ip.address);
          for (const [p, k] of m) if (k.inflight === 0) m.delete(p);
        }
        c = { inflight: 0, lastEnd: now };
        m.set(ip.port, c);
      }
      const conn = c;
      conn.inflight++;
      try {
        let r = req;
        // Most requests are neither: a string test spares them parsing the URL.
        const url = req.url.includes("index=") || req.url.includes("/v1/operator/snapshot") ? new URL(req.url) : undefined;
        if (url?.searchParams.has("index")) srv.timeout(req, BLOCKING_QUERY_TIMEOUT_S);
        else if (url && isRestore(req.method, url.pathname) && req.body) {
          // The server may stop reading while it verifies, so the connection's own timeout is off; the
          // client's silence is bounded by the body's idle bound instead.
          srv.timeout(req, 0);
          r = new Request(req.url, {
            method: req.method,
            headers: req.headers,
            body: idleBounded(req.body, bodyIdleMs, () => refusals.refuse("body_idle_timeout", ip.address)),
            signal: req.signal,
            duplex: "half",
          } as RequestInit);
        }
        addressOf.set(r, ip.address);
        return await o.fetch(r);
      } finally {
        conn.inflight--;
        conn.lastEnd = performance.now();
        if (req.headers.get("connection")?.toLowerCase() === "close") m.delete(ip.port);
      }
    },
  });

  return {
    port: server.port ?? o.port,
    clientIp: (req) => addressOf.get(req) ?? server.requestIP(req)?.address,
    refusedCounts: () => refusals.counts(),
    async stop(closeActive) {
      refusals.close();
      await server.stop(closeActive);
    },
  };
}

/** A body stream that fails when its source gives no bytes for `ms`. */
export function idleBounded(body: ReadableStream<Uint8Array>, ms: number, onIdle: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      let idle: Error | undefined;
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await withDeadline(reader.read(), ms, () => (idle = new Error(`request body: no bytes for ${ms} ms`)));
      } catch (e) {
        if (idle === undefined || e !== idle) throw e;
        onIdle();
        await reader.cancel(e).catch(() => {});
        ctl.error(e);
        return;
      }
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/**
 * Established TCP connections from `address` to local `port`, from /proc/net/tcp{,6}; undefined where
 * there is no such table. Read only when an address reaches the cap.
 */
function establishedFrom(address: string, port: number): number | undefined {
  let n = 0;
  let any = false;
  const want4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "latin1");
    } catch {
      continue;
    }
    any = true;
    const lines = text.split("\n");
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]!.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "01") continue; // 01: ESTABLISHED
      const [lAddr, lPort] = f[1]!.split(":");
      const [rAddr, rPort] = f[2]!.split(":");
      if (lAddr === undefined || rAddr === undefined || rPort === undefined || parseInt(lPort ?? "", 16) !== port) continue;
      if (procAddress(rAddr) === want4 || procAddress(rAddr) === address) n++;
    }
  }
  return any ? n : undefined;
}

/** An address as /proc/net/tcp writes it (little-endian 32-bit words of hex) in its usual text form. */
function procAddress(hex: string): string {
  const words: number[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const w = hex.slice(i, i + 8);
    words.push(parseInt(w.slice(6, 8) + w.slice(4, 6) + w.slice(2, 4) + w.slice(0, 2), 16) >>> 0);
  }
  const bytes = words.flatMap((w) => [w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff]);
  if (bytes.length === 4) return bytes.join(".");
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is reported in its IPv4 form.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}
