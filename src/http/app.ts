// The Hono application: one router per area over the Backend, the error model
// (plain-text bodies, statuses from the code table), 404 and 405, body limits.
import { Hono } from "hono";
import type { Backend } from "../server/backend.ts";
import { agentRoutes } from "./agent.ts";
import { errorResponse } from "./errors.ts";
import { bodyLimit, perClientLimit } from "./limits.ts";
import { metricsRoutes } from "./metrics.ts";
import { operatorRoutes } from "./operator.ts";
import { percentEncodingCheck } from "./percent.ts";
import { statusRoutes } from "./status.ts";
import { uiRoutes } from "./ui/routes.tsx";
import { varRoutes } from "./vars.ts";

export interface AppOptions {
  maxRequestBody: number;
  maxConnsPerClient: number;
  clientIp?: (req: Request) => string | undefined;
  /** Extra routers (ACL, ...) mounted beside the built-in ones. */
  extra?: ((b: Backend) => Hono)[];
}

const isRestore = (method: string, path: string) => path === "/v1/operator/snapshot" && (method === "PUT" || method === "POST");

export function createApp(b: Backend, opts: AppOptions): Hono {
  const app = new Hono();
  app.onError((e, c) => errorResponse(c, e));
  app.use("*", async (c, next) => {
    await next();
    b.observeHttp?.(c.req.routePath, c.req.method, c.res.status);
  });
  app.use("*", percentEncodingCheck());
  app.use("*", perClientLimit(opts.maxConnsPerClient, opts.clientIp ?? (() => undefined)));
  app.use("*", bodyLimit(opts.maxRequestBody, isRestore));

  const routers = [
    statusRoutes(b),
    agentRoutes(b),
    metricsRoutes(b),
    operatorRoutes(b),
    varRoutes(b),
    uiRoutes(b),
    ...(opts.extra ?? []).map((f) => f(b)),
  ];
  for (const r of routers) app.route("/", r);

  // A known path with a method it does not serve is 405, not 404.
  const known = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    const set = known.get(r.path) ?? new Set<string>();
    set.add(r.method);
    known.set(r.path, set);
  }
  for (const [path, methods] of known) {
    app.all(path, (c) => {
      c.header("Allow", [...methods].join(", "));
      return c.text(`Method ${c.req.method} not allowed on ${c.req.path}; allowed: ${[...methods].join(", ")}`, 405);
    });
  }
  app.notFound((c) => c.text(`Not found: ${c.req.path}`, 404));
  return app;
}
