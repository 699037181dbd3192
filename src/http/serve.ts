// The HTTP listener and the bounds on its connections: a cap on connections per address, counted from
// each connection's accept, so one that never sends a request counts too (the one over the cap is
// refused at once: a 429 written and the connection closed); a deadline for a new connection's first
// request head; an idle timeout on every connection (kept-alive ones included, and a body that stops
// mid-way), lifted per request only for blocking queries and restore uploads (a restore body has its own
// idle bound instead). The protocol itself is http1_server.ts.
import { BODY_IDLE_MS, HTTP_FIRST_REQUEST_MS, HTTP_IDLE_TIMEOUT_S, HTTP_MAX_HEAD_BYTES } from "../lib/limits.ts";
import { RefusalLog, type RefusalLogFn } from "../lib/refusal_log.ts";
import { withDeadline } from "../lib/deadline.ts";
import { listenHttp1, plainResponse } from "./http1_server.ts";

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
  firstRequestMs?: number;
  log?: RefusalLogFn;
  onRefused?: (reason: string) => void;
}

export interface HttpListener {
  readonly port: number;
  /** The client's address for a request this listener handed out. */
  clientIp(req: Request): string | undefined;
  refusedCounts(): Record<string, number>;
  stop(closeActive: boolean): Promise<void>;
}

const isRestore = (method: string, path: string) => path === "/v1/operator/snapshot" && (method === "PUT" || method === "POST");

export function serveHttp(o: HttpServeOptions): HttpListener {
  const bodyIdleMs = o.bodyIdleMs ?? BODY_IDLE_MS;
  const refusals = new RefusalLog("http", o.log, o.onRefused);
  /** Open connections by address. */
  const open = new Map<string, number>();
  const addressOf = new WeakMap<Request, string>();

  const server = listenHttp1(
    {
      hostname: o.hostname,
      port: o.port,
      ...(o.tls ? { tls: o.tls } : {}),
      firstRequestMs: o.firstRequestMs ?? HTTP_FIRST_REQUEST_MS,
      idleTimeoutS: o.idleTimeoutS ?? HTTP_IDLE_TIMEOUT_S,
      maxHeadBytes: HTTP_MAX_HEAD_BYTES,
    },
    {
      admit(address) {
        const n = open.get(address) ?? 0;
        if (n >= o.maxConnsPerAddress) {
          refusals.refuse("conn_limit", address);
          return plainResponse(429, `Too many connections from ${address} (limit ${o.maxConnsPerAddress})`);
        }
        open.set(address, n + 1);
        return undefined;
      },
      closed(address) {
        const n = open.get(address) ?? 0;
        if (n <= 1) open.delete(address);
        else open.set(address, n - 1);
      },
      fetch(req, exchange) {
        let r = req;
        // Most requests are neither: a string test spares them parsing the URL.
        const url = req.url.includes("index=") || req.url.includes("/v1/operator/snapshot") ? new URL(req.url) : undefined;
        if (url?.searchParams.has("index")) exchange.timeout(BLOCKING_QUERY_TIMEOUT_S);
        else if (url && isRestore(req.method, url.pathname) && req.body) {
          // The server may stop reading while it verifies, so the connection's own timeout is off; the
          // client's silence is bounded by the body's idle bound instead.
          exchange.timeout(0);
          r = new Request(req.url, {
            method: req.method,
            headers: req.headers,
            body: idleBounded(req.body, bodyIdleMs, () => refusals.refuse("body_idle_timeout", exchange.address)),
            signal: req.signal,
            duplex: "half",
          } as RequestInit);
        }
        addressOf.set(r, exchange.address);
        return o.fetch(r);
      },
    },
  );

  return {
    port: server.port,
    clientIp: (req) => addressOf.get(req),
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
