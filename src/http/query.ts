// Reading the common query parameters (region, stale, blocking index/wait, token)
// and writing the query meta headers every read answers with.
import type { Context } from "hono";
import { parseDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { QueryMeta, QueryOptions } from "../server/backend.ts";

export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;
/** Longest token passed on to a call (a secret is a UUID; the ACL module hashes at most 256 chars). */
export const MAX_TOKEN_CHARS = 256;

export function queryOptions(c: Context): QueryOptions {
  const q: QueryOptions = {};
  const region = c.req.query("region");
  if (region) q.region = region;
  if (c.req.query("stale") !== undefined) q.stale = true;
  // `||`, not `??`: an empty X-Edgenode-Token falls back to the Bearer token, as in the ACL guard.
  const token = c.req.header("x-edgenode-token") || bearer(c.req.header("authorization"));
  // A token longer than any secret (server/acl.ts MAX_SECRET_CHARS) is unknown wherever it goes; it
  // travels on as no token, which gets the same answers, because a forwarded call's header refuses
  // it (token max 256 there): over a follower it was a 400 "malformed request header", not a 403.
  if (token && token.length <= MAX_TOKEN_CHARS) q.token = token;
  const index = c.req.query("index");
  if (index !== undefined) {
    if (!/^\d+$/.test(index) || !Number.isSafeInteger(Number(index)))
      throw new EdgeError("BAD_REQUEST", `invalid index "${index}": expected a non-negative integer`);
    q.minIndex = Number(index);
    let wait = DEFAULT_WAIT_MS;
    const w = c.req.query("wait");
    if (w !== undefined) {
      try {
        wait = parseDuration(w);
      } catch (e) {
        throw new EdgeError("BAD_REQUEST", `invalid wait: ${(e as Error).message}`);
      }
    }
    q.waitMs = Math.min(Math.max(wait, 0), MAX_WAIT_MS);
  }
  return q;
}

function bearer(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1];
}

export function setMeta(c: Context, meta: QueryMeta | undefined): void {
  if (!meta) return;
  c.header("X-Edgenode-Index", String(meta.index));
  c.header("X-Edgenode-KnownLeader", String(meta.knownLeader));
  c.header("X-Edgenode-LastContact", String(Math.round(meta.lastContactMs)));
  // A server whose apply stopped at an entry it does not understand serves stale reads and says how far behind.
  if (meta.behind !== undefined) c.header("X-Edgenode-Behind", String(meta.behind));
}

export function intParam(c: Context, name: string): number | undefined {
  const v = c.req.query(name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new EdgeError("BAD_REQUEST", `invalid ${name} "${v}": expected a non-negative integer`);
  return Number(v);
}
