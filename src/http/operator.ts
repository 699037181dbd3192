// /v1/operator/*: the Raft configuration and each server's raft progress, peer removal, leadership transfer and
// snapshot save (streamed download) and restore (streamed upload).
import { Hono } from "hono";
import { EdgeError } from "../lib/errors.ts";
import { typedCall, type Backend } from "../server/backend.ts";
import { TEST_FEATURES } from "../server/features.ts";
import { wireArgs } from "../server/autopilot_config.ts";
import { jsonBody } from "./body.ts";
import { queryOptions, setMeta } from "./query.ts";

export function operatorRoutes(b: Backend): Hono {
  const r = new Hono();
  const call = typedCall(b);
  r.get("/v1/operator/raft/configuration", async (c) => {
    const res = await call("Operator.RaftGetConfiguration", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  r.get("/v1/operator/raft/stats", async (c) => {
    const res = await call("Operator.RaftStats", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  r.get("/v1/operator/autopilot/health", async (c) => {
    const res = await call("Operator.AutopilotHealth", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  r.get("/v1/operator/snapshot/history", async (c) => {
    const res = await call("Operator.SnapshotHistory", {}, queryOptions(c));
    return c.json(res.reply);
  });
  r.get("/v1/operator/autopilot/configuration", async (c) => {
    const res = await call("Operator.AutopilotGetConfiguration", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  r.put("/v1/operator/autopilot/configuration", async (c) => {
    const body = await jsonBody(c, wireArgs.strict());
    const res = await call("Operator.AutopilotSetConfiguration", body, queryOptions(c));
    return c.json(res.reply);
  });
  r.delete("/v1/operator/raft/peer", async (c) => {
    const id = c.req.query("id");
    if (!id) throw new EdgeError("BAD_REQUEST", "missing ?id=<server ID>");
    const res = await call("Operator.RaftRemovePeer", { id }, queryOptions(c));
    return c.json(res.reply ?? {});
  });
  r.put("/v1/operator/raft/transfer-leadership", async (c) => {
    const res = await call("Operator.TransferLeadership", { id: c.req.query("id") }, queryOptions(c));
    return c.json(res.reply ?? {});
  });
  // The feature gate's test endpoint (server/gated_endpoints.ts): only in a binary built with --test-features.
  if (TEST_FEATURES)
    r.put("/v1/operator/test-gated", async (c) => {
      const res = await b.call("Operator.TestGated", { value: c.req.query("value") ?? "" }, queryOptions(c));
      return c.json(res.reply ?? {});
    });
  r.get("/v1/operator/snapshot", async (c) => {
    const snap = await b.snapshotSave(queryOptions(c));
    // Content-Length lets a client see a body cut short by a failure after the status line.
    return new Response(snap.body, {
      status: 200,
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Length": String(snap.size),
        Digest: `sha-256=${snap.digest}`,
        "X-Edgenode-Index": String(snap.index),
        "X-Edgenode-KnownLeader": String(snap.meta.knownLeader),
        "X-Edgenode-LastContact": String(Math.round(snap.meta.lastContactMs)),
      },
    });
  });
  const restore = async (c: import("hono").Context) => {
    const body = c.req.raw.body;
    if (!body) throw new EdgeError("BAD_REQUEST", "snapshot restore needs the snapshot file as the request body");
    const q = queryOptions(c);
    const reply = await b.snapshotRestore(body, { ...q, dryRun: c.req.query("dry-run") !== undefined, signal: c.req.raw.signal });
    return c.json(reply);
  };
  r.put("/v1/operator/snapshot", restore);
  r.post("/v1/operator/snapshot", restore);
  return r;
}
