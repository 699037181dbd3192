// /v1/acl/*: bootstrap, tokens and policies in Nomad's shapes, thin over the ACL.* calls;
// and the guard that puts the agent's local routes (/v1/agent/self, /v1/metrics) behind a token.
import { Hono, type Context } from "hono";
import { getPath } from "hono/utils/url";
import { z } from "zod";
import { EdgeError, toEdgeError } from "../lib/errors.ts";
import { typedCall, type Backend } from "../server/backend.ts";
import { jsonBody } from "./body.ts";
import { queryOptions, setMeta } from "./query.ts";

const tokenBody = z.object({
  AccessorID: z.string().max(128).optional(),
  Name: z.string().max(1024).optional(),
  Type: z.enum(["client", "management"]).optional(),
  Policies: z.array(z.string().max(1024)).max(1024).nullable().optional(),
});

const policyBody = z.object({
  Name: z.string().max(1024).optional(),
  Description: z.string().max(4096).optional(),
  Rules: z.string(),
});

export function aclRoutes(b: Backend): Hono {
  const r = new Hono();
  const call = typedCall(b);

  const bootstrap = async (c: Context) => {
    const res = await call("ACL.Bootstrap", {}, queryOptions(c));
    return c.json(res.reply);
  };
  r.post("/v1/acl/bootstrap", bootstrap);
  r.put("/v1/acl/bootstrap", bootstrap);

  r.get("/v1/acl/tokens", async (c) => {
    const res = await call("ACL.ListTokens", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });

  const upsertToken = (fromUrl: string | undefined) => async (c: Context) => {
    const q = queryOptions(c);
    const body = await jsonBody(c, tokenBody);
    if (fromUrl !== undefined && body.AccessorID && body.AccessorID !== fromUrl) {
      throw new EdgeError("BAD_REQUEST", `AccessorID in the body (${body.AccessorID}) does not match the URL (${fromUrl})`);
    }
    const accessorId = fromUrl ?? (body.AccessorID || undefined);
    const res = await call(
      "ACL.UpsertToken",
      { accessorId, name: body.Name ?? "", type: body.Type ?? "client", policies: body.Policies ?? [] },
      q,
    );
    return c.json(res.reply);
  };
  r.put("/v1/acl/token", upsertToken(undefined));
  r.post("/v1/acl/token", upsertToken(undefined));

  // Registered before /:accessor so that "self" is not taken for an accessor ID.
  r.get("/v1/acl/token/self", async (c) => {
    const res = await call("ACL.TokenSelf", {}, queryOptions(c));
    return c.json(res.reply);
  });
  r.get("/v1/acl/token/:accessor", async (c) => {
    const res = await call("ACL.GetToken", { accessorId: c.req.param("accessor") }, queryOptions(c));
    setMeta(c, res.meta);
    if (res.reply === null || res.reply === undefined) return c.text("ACL token not found", 404);
    return c.json(res.reply);
  });
  r.put("/v1/acl/token/:accessor", (c) => upsertToken(c.req.param("accessor"))(c));
  r.post("/v1/acl/token/:accessor", (c) => upsertToken(c.req.param("accessor"))(c));
  r.delete("/v1/acl/token/:accessor", async (c) => {
    const res = await call("ACL.DeleteToken", { accessorId: c.req.param("accessor") }, queryOptions(c));
    return c.json(res.reply ?? {});
  });

  r.get("/v1/acl/policies", async (c) => {
    const res = await call("ACL.ListPolicies", {}, queryOptions(c));
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  r.get("/v1/acl/policy/:name", async (c) => {
    const res = await call("ACL.GetPolicy", { name: c.req.param("name") }, queryOptions(c));
    setMeta(c, res.meta);
    if (res.reply === null || res.reply === undefined) return c.text("ACL policy not found", 404);
    return c.json(res.reply);
  });
  const upsertPolicy = async (c: Context) => {
    const name = c.req.param("name") ?? "";
    const q = queryOptions(c);
    const body = await jsonBody(c, policyBody);
    if (body.Name && body.Name !== name)
      throw new EdgeError("BAD_REQUEST", `policy Name in the body (${body.Name}) does not match the URL (${name})`);
    const res = await call("ACL.UpsertPolicy", { name, description: body.Description ?? "", rules: body.Rules }, q);
    return c.json(res.reply);
  };
  r.put("/v1/acl/policy/:name", upsertPolicy);
  r.post("/v1/acl/policy/:name", upsertPolicy);
  r.delete("/v1/acl/policy/:name", async (c) => {
    const res = await call("ACL.DeletePolicy", { name: c.req.param("name") }, queryOptions(c));
    return c.json(res.reply ?? {});
  });
  return r;
}

/** Routes the agent answers from local facts without making a call; the guard asks the hook first. */
const AGENT_LOCAL_ROUTES = new Set(["/v1/agent/self", "/v1/agent/state-hash", "/v1/metrics"]);

/** The token of a request: `X-Edgenode-Token`, else `Authorization: Bearer`. */
export function requestToken(req: Request): string | undefined {
  const t = req.headers.get("x-edgenode-token");
  if (t) return t;
  const m = /^Bearer\s+(.+)$/i.exec((req.headers.get("authorization") ?? "").trim());
  return m?.[1];
}

/**
 * Wrap the app's fetch so that the agent's local routes need a token with agent:read (or a
 * management token) when ACLs are on. With ACLs off the check is a local no-op call.
 */
export function aclGuard(b: Backend, fetch: (req: Request) => Response | Promise<Response>): (req: Request) => Promise<Response> {
  const call = typedCall(b);
  return async (req) => {
    // The path as the router will see it (percent-decoded): the raw pathname let /v1/agent/%73elf
    // and /v1/%6detrics reach the routes without a token.
    const path = getPath(req);
    if (AGENT_LOCAL_ROUTES.has(path)) {
      const token = requestToken(req);
      try {
        await call("ACL.AuthorizeAgent", {}, token ? { token } : {});
      } catch (e) {
        const err = toEdgeError(e);
        b.observeHttp?.(path, req.method, err.status);
        return new Response(err.message || "error", { status: err.status, headers: { "content-type": "text/plain; charset=UTF-8" } });
      }
    }
    return fetch(req);
  };
}
