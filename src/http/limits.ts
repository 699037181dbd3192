// Request limits at the HTTP edge: a bound on every body but the snapshot
// restore's, and on concurrent requests per client address.
import { concatBytes } from "../lib/bytes.ts";
import type { MiddlewareHandler } from "hono";
import { EdgeError } from "../lib/errors.ts";

/** Rejects bodies over `max` bytes with 413, by Content-Length up front and by counting streamed bytes. */
export function bodyLimit(max: number, exempt: (method: string, path: string) => boolean): MiddlewareHandler {
  return async (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD" || method === "OPTIONS" || exempt(method, c.req.path)) return next();
    const len = c.req.header("content-length");
    if (len !== undefined) {
      const n = Number(len);
      if (!Number.isFinite(n) || n < 0) throw new EdgeError("BAD_REQUEST", "invalid Content-Length");
      if (n > max) throw new EdgeError("TOO_LARGE", `Request body too large: ${n} bytes, limit ${max}`);
      return next();
    }
    // Chunked: read it here with a bound so the handler sees a bounded body.
    const body = c.req.raw.body;
    if (body) {
      const chunks: Uint8Array[] = [];
      let total = 0;
      const reader = body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > max) {
          await reader.cancel().catch(() => {});
          throw new EdgeError("TOO_LARGE", `Request body too large: over ${max} bytes`);
        }
        chunks.push(value);
      }
      const buf = concatBytes(chunks);
      c.req.raw = new Request(c.req.raw.url, { method, headers: c.req.raw.headers, body: buf });
    }
    return next();
  };
}

/** Bounds concurrent in-flight requests per client IP (Nomad's http_max_conns_per_client). */
export function perClientLimit(max: number, clientIp: (req: Request) => string | undefined): MiddlewareHandler {
  const inflight = new Map<string, number>();
  return async (c, next) => {
    if (max <= 0) return next();
    const ip = clientIp(c.req.raw) ?? "unknown";
    const n = inflight.get(ip) ?? 0;
    if (n >= max) return c.text(`Too many concurrent requests from ${ip} (limit ${max})`, 429);
    inflight.set(ip, n + 1);
    try {
      await next();
    } finally {
      const left = (inflight.get(ip) ?? 1) - 1;
      if (left <= 0) inflight.delete(ip);
      else inflight.set(ip, left);
    }
  };
}
