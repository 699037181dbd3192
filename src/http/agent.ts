// /v1/agent/*: facts about the server answering, never forwarded.
import { Hono } from "hono";
import type { Backend } from "../server/backend.ts";

export function agentRoutes(b: Backend): Hono {
  const r = new Hono();
  r.get("/v1/agent/self", (c) => c.json(b.self()));
  r.get("/v1/agent/health", (c) => {
    const h = b.health();
    return c.json({ server: { ok: h.ok, message: h.message } }, h.ok ? 200 : 500);
  });
  return r;
}
