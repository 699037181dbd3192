// Routes through the Hono app with a fake backend: error model, 404/405/413, query meta headers.
import { describe, expect, test } from "bun:test";
import { createApp } from "../../src/http/app.ts";
import type { Backend, CallResult, QueryOptions } from "../../src/server/backend.ts";
import { EdgeError } from "../../src/lib/errors.ts";

function fake(calls: { method: string; args: Record<string, unknown>; q: QueryOptions }[] = []): Backend {
  return {
    async call(method, args, q): Promise<CallResult> {
      calls.push({ method, args, q });
      if (method === "Var.Get") {
        if (args.path === "missing") return { reply: null, meta: { index: 7, knownLeader: true, lastContactMs: 0 } };
        return { reply: { Path: args.path, Items: { a: "b" } }, meta: { index: 9, knownLeader: true, lastContactMs: 3 } };
      }
      if (method === "Var.Put" && args.cas === 1) throw new EdgeError("CONFLICT", "cas conflict", { Path: args.path, ModifyIndex: 5 });
      if (method === "Status.Leader") throw new EdgeError("NO_LEADER", "No cluster leader");
      return { reply: { ok: true } };
    },
    async snapshotSave() {
      throw new EdgeError("NO_LEADER", "No cluster leader");
    },
    async snapshotRestore() {
      return { Index: 1 };
    },
    self: () => ({ config: { name: "x" } }),
    health: () => ({ ok: true, message: "ok" }),
    metrics: (f) => (f === "json" ? { a: 1 } : "a 1\n"),
  };
}

const app = (b = fake()) => createApp(b, { maxRequestBody: 1024, maxConnsPerClient: 10 });

describe("http app", () => {
  test("agent self and health", async () => {
    const res = await app().request("/v1/agent/self");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ config: { name: "x" } });
    const h = await app().request("/v1/agent/health");
    expect(await h.json()).toEqual({ server: { ok: true, message: "ok" } });
  });

  test("404 for unknown paths, plain text", async () => {
    const res = await app().request("/v1/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("text/plain");
    expect(await res.text()).toBe("Not found: /v1/nope");
  });

  test("405 for a known path with the wrong method", async () => {
    const res = await app().request("/v1/agent/self", { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
    expect(await res.text()).toContain("not allowed");
  });

  test("413 for a body over the limit, by length and chunked", async () => {
    const big = "x".repeat(2048);
    const res = await app().request("/v1/var/a", { method: "PUT", body: JSON.stringify({ Items: { a: big } }) });
    expect(res.status).toBe(413);
    expect(await res.text()).toContain("too large");
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const res2 = await app().request("/v1/var/a", { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    expect(res2.status).toBe(413);
  });

  test("restore is exempt from the body limit", async () => {
    const res = await app().request("/v1/operator/snapshot", { method: "PUT", body: "x".repeat(4096) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ Index: 1 });
  });

  test("error codes map to statuses with plain-text bodies", async () => {
    const res = await app().request("/v1/status/leader");
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("No cluster leader");
  });

  test("CAS conflict answers 409 with the current variable", async () => {
    const res = await app().request("/v1/var/a?cas=1", { method: "PUT", body: JSON.stringify({ Items: { k: "v" } }) });
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ Path: "a", ModifyIndex: 5 });
  });

  test("bad JSON and bad query values are 400", async () => {
    expect((await app().request("/v1/var/a", { method: "PUT", body: "{" })).status).toBe(400);
    expect((await app().request("/v1/var/a?index=abc")).status).toBe(400);
    expect((await app().request("/v1/var/a?index=1&wait=forever")).status).toBe(400);
  });

  test("query options and meta headers", async () => {
    const calls: { method: string; args: Record<string, unknown>; q: QueryOptions }[] = [];
    const res = await app(fake(calls)).request("/v1/var/app/x?stale&region=east&index=4&wait=20m", {
      headers: { Authorization: "Bearer tok" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgenode-index")).toBe("9");
    expect(res.headers.get("x-edgenode-knownleader")).toBe("true");
    expect(res.headers.get("x-edgenode-lastcontact")).toBe("3");
    expect(calls[0]).toEqual({
      method: "Var.Get",
      args: { path: "app/x" },
      q: { stale: true, region: "east", token: "tok", minIndex: 4, waitMs: 600_000 },
    });
  });

  test("DELETE takes the lock ID from the body or ?lock-id=", async () => {
    const calls: { method: string; args: Record<string, unknown>; q: QueryOptions }[] = [];
    await app(fake(calls)).request("/v1/var/a", { method: "DELETE", body: JSON.stringify({ Lock: { ID: "abc" } }) });
    await app(fake(calls)).request("/v1/var/a?lock-id=def&cas=3", { method: "DELETE" });
    expect(calls.map((c) => c.args)).toEqual([
      { path: "a", cas: undefined, lockId: "abc" },
      { path: "a", cas: 3, lockId: "def" },
    ]);
  });

  test("missing variable is 404", async () => {
    const res = await app().request("/v1/var/missing");
    expect(res.status).toBe(404);
    expect(res.headers.get("x-edgenode-index")).toBe("7");
  });
});
