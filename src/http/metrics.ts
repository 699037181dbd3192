// /v1/metrics in JSON, or the Prometheus text exposition format with ?format=prometheus.
import { Hono } from "hono";
import { EdgeError } from "../lib/errors.ts";
import type { Backend } from "../server/backend.ts";

export function metricsRoutes(b: Backend): Hono {
  const r = new Hono();
  r.get("/v1/metrics", (c) => {
    const format = c.req.query("format");
    if (format === "prometheus") {
      return c.text(b.metrics("prometheus") as string, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
    }
    if (format !== undefined && format !== "json")
      throw new EdgeError("BAD_REQUEST", `unknown metrics format "${format}": expected json or prometheus`);
    return c.json(b.metrics("json") as Record<string, unknown>);
  });
  return r;
}
