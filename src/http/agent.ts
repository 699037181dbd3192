// /v1/agent/*: facts about the server answering, never forwarded.
import { Hono } from "hono";
import type { Backend } from "../server/backend.ts";

export function agentRoutes(b: Backend): Hono {
  const r = new Hono();
  r.get("/v1/agent/self", (c) => c.json(b.self()));
  // A digest of this server's state at its applied index (server/state_hash.ts): compare servers with it.
  r.get("/v1/agent/state-hash", (c) => (b.stateHash ? c.json(b.stateHash()) : c.text("not served here", 404)));
  r.get("/v1/agent/health", (c) => {
    const h = b.health();
    return c.json({ server: { ok: h.ok, message: h.message } }, h.ok ? 200 : 500);
  });
  return r;
}
