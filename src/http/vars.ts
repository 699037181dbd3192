// /v1/var/:path and /v1/vars: variables with CAS, locks and blocking reads.
import { Hono, type Context } from "hono";
import { z } from "zod";
import { EdgeError } from "../lib/errors.ts";
import { typedCall, type Backend, type CallResult, type Reply } from "../server/backend.ts";
import { jsonBody } from "./body.ts";
import { intParam, queryOptions, setMeta } from "./query.ts";

const MAX_PER_PAGE = 1000;

/**
 * Names an object key cannot safely carry: JSON.parse makes them own keys, but zod drops
 * `__proto__` and code reading items as a plain object may not see them as data.
 */
const RESERVED_ITEM_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

// Checked on the parsed JSON, before zod builds its own object (which would drop `__proto__`).
const itemsSchema = z
  .unknown()
  .superRefine((v, ctx) => {
    if (typeof v !== "object" || v === null) return;
    for (const k of Object.keys(v)) {
      if (RESERVED_ITEM_KEYS.has(k))
        ctx.addIssue({
          code: "custom",
          path: [k],
          message: `item key ${JSON.stringify(k)} is not allowed (${[...RESERVED_ITEM_KEYS].join(", ")} are reserved)`,
        });
    }
  })
  .pipe(z.record(z.string(), z.string()));
const putBody = z
  .object({
    Items: itemsSchema.optional(),
    Lock: z
      .object({ ID: z.string().max(128).optional(), TTL: z.string().max(32).optional(), LockDelay: z.string().max(32).optional() })
      .optional(),
  })
  .passthrough();

/**
 * The path of a request's URL. A Request's url is already parsed and serialized (WHATWG), so its path
 * is what follows the authority up to the query: taken by slicing, with no URL object per request.
 */
function urlPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  const h = url.indexOf("#", start);
  const end = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return end < 0 ? url.slice(start) : url.slice(start, end);
}

function varPath(c: Context): string {
  let full: string;
  try {
    full = decodeURIComponent(urlPath(c.req.url));
  } catch {
    throw new EdgeError("BAD_REQUEST", "invalid percent-encoding in the variable path");
  }
  return full.slice("/v1/var/".length);
}

export function varRoutes(b: Backend): Hono {
  const r = new Hono();
  const call = typedCall(b);
  r.get("/v1/var/*", async (c) => {
    const res = await call("Var.Get", { path: varPath(c) }, queryOptions(c));
    setMeta(c, res.meta);
    if (res.reply === null || res.reply === undefined) return c.text("variable not found", 404);
    return c.json(res.reply);
  });
  r.put("/v1/var/*", async (c) => {
    const path = varPath(c);
    const q = queryOptions(c);
    const body = await jsonBody(c, putBody);
    const has = (k: string) => c.req.query(k) !== undefined;
    let res: CallResult<Reply<"Var.Put">>;
    if (has("lock-acquire")) {
      res = await call("Var.LockAcquire", { path, items: body.Items, ttl: body.Lock?.TTL, lockDelay: body.Lock?.LockDelay }, q);
    } else if (has("lock-renew")) {
      if (!body.Lock?.ID) throw new EdgeError("BAD_REQUEST", "lock-renew needs Lock.ID in the body");
      res = await call("Var.LockRenew", { path, lockId: body.Lock.ID }, q);
    } else if (has("lock-release")) {
      if (!body.Lock?.ID) throw new EdgeError("BAD_REQUEST", "lock-release needs Lock.ID in the body");
      res = await call("Var.LockRelease", { path, lockId: body.Lock.ID }, q);
    } else {
      if (!body.Items) throw new EdgeError("BAD_REQUEST", "invalid request body: Items is required");
      res = await call("Var.Put", { path, items: body.Items, cas: intParam(c, "cas"), lockId: body.Lock?.ID }, q);
    }
    setMeta(c, res.meta);
    return c.json(res.reply);
  });
  r.delete("/v1/var/*", async (c) => {
    const q = queryOptions(c);
    // A locked variable is deleted with its lock's ID, in the body as for PUT ({"Lock":{"ID":…}}) or as ?lock-id=.
    const body = await jsonBody(c, putBody);
    const lockId = body.Lock?.ID ?? c.req.query("lock-id");
    const res = await call("Var.Delete", { path: varPath(c), cas: intParam(c, "cas"), lockId }, q);
    setMeta(c, res.meta);
    return c.json(res.reply ?? {});
  });
  r.get("/v1/vars", async (c) => {
    const perPage = intParam(c, "per_page");
    if (perPage !== undefined && (perPage < 1 || perPage > MAX_PER_PAGE))
      throw new EdgeError("BAD_REQUEST", `per_page must be between 1 and ${MAX_PER_PAGE}`);
    const res = await call(
      "Var.List",
      { prefix: c.req.query("prefix") ?? "", perPage: perPage ?? MAX_PER_PAGE, nextToken: c.req.query("next_token") },
      queryOptions(c),
    );
    setMeta(c, res.meta);
    const reply = res.reply;
    if (reply.nextToken) c.header("X-Edgenode-NextToken", reply.nextToken);
    return c.json(reply.vars);
  });
  return r;
}
