// /v1/status/* and /v1/regions: who leads, who votes, which regions exist.
import { Hono } from "hono";
import { typedCall, type Backend } from "../server/backend.ts";
import { queryOptions, setMeta } from "./query.ts";

export function statusRoutes(b: Backend): Hono {
  const r = new Hono();
  const call = typedCall(b);
  r.get("/v1/status/leader", async (c) => {
    const res = await call("Status.Leader", {}, queryOptions(c));
    return c.json(res.reply);
  });
  r.get("/v1/status/peers", async (c) => {
    const res = await call("Status.Peers", {}, queryOptions(c));
    return c.json(res.reply);
  });
  r.get("/v1/regions", async (c) => {
    const res = await call("Region.List", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  return r;
}
