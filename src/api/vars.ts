// Variable calls: get, put (with CAS), delete, list (one page or all) and the lock life cycle.
import { ApiError, type ApiClient, type QueryMeta, type QueryOptions } from "./client.ts";

export interface VariableLock {
  ID?: string;
  TTL: number;
  LockDelay: number;
}

export interface VariableMeta {
  Path: string;
  Lock?: VariableLock;
  CreateIndex: number;
  ModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
}

export interface Variable extends VariableMeta {
  Items: Record<string, string>;
}

/** Pages are fetched until the server gives no next token, but never more than this many. */
const MAX_PAGES = 100_000;

const varUrl = (path: string) => `/v1/var/${path.split("/").map(encodeURIComponent).join("/")}`;

/** The variable, or undefined when it does not exist. */
export async function getVar(c: ApiClient, path: string, q?: QueryOptions): Promise<{ variable: Variable | undefined; meta: QueryMeta }> {
  try {
    const r = await c.json<Variable>({ method: "GET", path: varUrl(path), query: q });
    return { variable: r.body, meta: r.meta };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { variable: undefined, meta: {} };
    throw e;
  }
}

export async function putVar(
  c: ApiClient,
  path: string,
  items: Record<string, string>,
  opts: { cas?: number; lockId?: string } = {},
): Promise<Variable> {
  const body: Record<string, unknown> = { Items: items };
  if (opts.lockId) body.Lock = { ID: opts.lockId };
  const r = await c.json<Variable>({ method: "PUT", path: varUrl(path), params: { cas: opts.cas }, json: body });
  return r.body;
}

export async function deleteVar(c: ApiClient, path: string, opts: { cas?: number; lockId?: string } = {}): Promise<void> {
  await c.json<unknown>({ method: "DELETE", path: varUrl(path), params: { cas: opts.cas, "lock-id": opts.lockId } });
}

export async function listVarsPage(
  c: ApiClient,
  prefix: string,
  opts: { perPage?: number; nextToken?: string } = {},
  q?: QueryOptions,
): Promise<{ vars: VariableMeta[]; nextToken: string | undefined; meta: QueryMeta }> {
  const r = await c.json<VariableMeta[]>({
    method: "GET",
    path: "/v1/vars",
    params: { prefix: prefix || undefined, per_page: opts.perPage, next_token: opts.nextToken },
    query: q,
  });
  if (!Array.isArray(r.body)) throw new ApiError(r.status, "invalid response to GET /v1/vars: expected a JSON array");
  return { vars: r.body, nextToken: r.meta.nextToken, meta: r.meta };
}

/** Every variable under the prefix, following next tokens through all pages. */
export async function listAllVars(
  c: ApiClient,
  prefix: string,
  opts: { perPage?: number } = {},
  q?: QueryOptions,
): Promise<VariableMeta[]> {
  const all: VariableMeta[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await listVarsPage(c, prefix, { perPage: opts.perPage, nextToken: token }, q);
    all.push(...r.vars);
    if (!r.nextToken) return all;
    if (r.nextToken === token) throw new ApiError(200, `the server repeated next token "${token}"`);
    token = r.nextToken;
  }
  throw new ApiError(200, `listing did not end after ${MAX_PAGES} pages`);
}

export async function lockAcquire(
  c: ApiClient,
  path: string,
  opts: { ttl: string; lockDelay?: string; items?: Record<string, string> },
): Promise<Variable & { Lock: VariableLock & { ID: string } }> {
  const lock: Record<string, string> = { TTL: opts.ttl };
  if (opts.lockDelay) lock.LockDelay = opts.lockDelay;
  const body: Record<string, unknown> = { Lock: lock };
  if (opts.items) body.Items = opts.items;
  const r = await c.json<Variable>({ method: "PUT", path: varUrl(path), params: { "lock-acquire": true }, json: body });
  const id = r.body?.Lock?.ID;
  if (typeof id !== "string" || id === "") throw new ApiError(r.status, "the server acquired the lock but returned no Lock.ID");
  return r.body as Variable & { Lock: VariableLock & { ID: string } };
}

export async function lockRenew(c: ApiClient, path: string, lockId: string, q?: QueryOptions): Promise<Variable> {
  const r = await c.json<Variable>({
    method: "PUT",
    path: varUrl(path),
    params: { "lock-renew": true },
    json: { Lock: { ID: lockId } },
    query: q,
  });
  return r.body;
}

export async function lockRelease(c: ApiClient, path: string, lockId: string, q?: QueryOptions): Promise<void> {
  await c.json<unknown>({ method: "PUT", path: varUrl(path), params: { "lock-release": true }, json: { Lock: { ID: lockId } }, query: q });
}
