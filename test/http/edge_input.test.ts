// Input refused at the HTTP edge with 400 before any backend call or token check: malformed
// percent-encoding anywhere in the path or query, and item keys that are not plain data keys.
import { expect, test } from "bun:test";
import { aclGuard } from "../../src/http/acl.ts";
import { createApp } from "../../src/http/app.ts";
import type { Backend, CallResult } from "../../src/server/backend.ts";
import { permissionDenied } from "../../src/lib/errors.ts";

/** A backend with ACLs on and no token given: every call is denied, and recorded. */
function denyingBackend(calls: { method: string; args: Record<string, unknown> }[]): Backend {
  return {
    async call(method, args, q): Promise<CallResult> {
      calls.push({ method, args });
      if (!q.token) throw permissionDenied();
      return { reply: { Path: args.path, Items: args.items ?? {} }, meta: { index: 1, knownLeader: true, lastContactMs: 0 } };
    },
    async snapshotSave() {
      throw permissionDenied();
    },
    async snapshotRestore() {
      throw permissionDenied();
    },
    self: () => ({}),
    health: () => ({ ok: true, message: "ok" }),
    metrics: () => ({}),
  };
}

function server() {
  const calls: { method: string; args: Record<string, unknown> }[] = [];
  const b = denyingBackend(calls);
  const app = createApp(b, { maxRequestBody: 64 * 1024, maxConnsPerClient: 10 });
  const fetch = aclGuard(b, (req) => app.fetch(req));
  const request = (path: string, init: RequestInit = {}) => fetch(new Request(`http://edge${path}`, init));
  return { calls, request };
}

test("GET /v1/var/app/%ZZ is a 400 without a token, before any call", async () => {
  const { calls, request } = server();
  const res = await request("/v1/var/app/%ZZ");
  expect(res.status).toBe(400);
  expect(await res.text()).toContain("invalid percent-encoding");
  expect(calls).toEqual([]);
});

test("every malformed escape in a path or query is a 400; well-formed ones still reach the route", async () => {
  const { calls, request } = server();
  for (const p of [
    "/v1/var/%E0%A4%A",
    "/v1/var/a%",
    "/v1/var/%C3",
    "/v1/vars?prefix=%ZZ",
    "/v1/var/a?cas=1%",
    "/v1/acl/token/%ZZ",
    "/v1/agent/%ZZelf",
    "/v1/%6detrics%G0",
  ]) {
    const res = await request(p);
    expect({ p, status: res.status }).toEqual({ p, status: 400 });
  }
  for (const m of ["PUT", "DELETE"]) {
    expect((await request("/v1/var/app/%ZZ", { method: m, body: '{"Items":{"a":"b"}}' })).status).toBe(400);
  }
  expect(calls).toEqual([]);
  // A good escape decodes as before (and then meets the token check).
  expect((await request("/v1/var/app%2Fx%C3%A9")).status).toBe(403);
  expect(calls).toEqual([{ method: "Var.Get", args: { path: "app/xé" } }]);
});

test("item keys __proto__, constructor and prototype are refused with 400 naming the key, not dropped", async () => {
  const { calls, request } = server();
  for (const key of ["__proto__", "constructor", "prototype"]) {
    const res = await request("/v1/var/app/a", {
      method: "PUT",
      headers: { "X-Edgenode-Token": "t" },
      body: `{"Items":{"a":"b","${key}":"x"}}`,
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toBe(
      `invalid request body: Items.${key}: item key "${key}" is not allowed (__proto__, constructor, prototype are reserved)`,
    );
  }
  expect(calls).toEqual([]);
  // Keys that only look alike, and names of Object.prototype's methods, are plain data.
  const res = await request("/v1/var/app/a", {
    method: "PUT",
    headers: { "X-Edgenode-Token": "t" },
    body: '{"Items":{"__proto__x":"1","toString":"2","hasOwnProperty":"3"}}',
  });
  expect(res.status).toBe(200);
  expect(calls.map((c) => Object.keys(c.args.items as object).sort())).toEqual([["__proto__x", "hasOwnProperty", "toString"]]);
  // The lock-acquire form carries Items too.
  expect(
    (
      await request("/v1/var/app/b?lock-acquire", {
        method: "PUT",
        headers: { "X-Edgenode-Token": "t" },
        body: '{"Items":{"__proto__":"x"}}',
      })
    ).status,
  ).toBe(400);
  expect(calls.length).toBe(1);
});
