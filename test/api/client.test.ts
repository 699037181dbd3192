// The typed client against a fake agent: URLs and query options, token, region, meta headers,
// ApiError shapes, bounded bodies, pagination, snapshot Digest parsing, and an unreachable agent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ApiClient, ApiError, MAX_RESPONSE_BYTES } from "../../src/api/client.ts";
import { listAllVars, getVar, putVar, lockAcquire } from "../../src/api/vars.ts";
import { parseDigest, snapshotSave } from "../../src/api/snapshot.ts";
import { freePort } from "../cli/dev_agent.ts";

interface Seen {
  method: string;
  url: URL;
  token: string | null;
  body: string;
}

const seen: Seen[] = [];
let server: ReturnType<typeof Bun.serve>;
let base: string;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      seen.push({ method: req.method, url, token: req.headers.get("x-edgenode-token"), body: await req.text() });
      const meta = { "X-Edgenode-Index": "42", "X-Edgenode-KnownLeader": "true", "X-Edgenode-LastContact": "7" };
      switch (url.pathname) {
        case "/v1/var/app/x":
          if (req.method === "GET")
            return Response.json(
              { Path: "app/x", Items: { a: "1" }, CreateIndex: 1, ModifyIndex: 2, CreateTime: 0, ModifyTime: 0 },
              { headers: meta },
            );
          return Response.json(
            { Path: "app/x", Items: { a: "2" }, CreateIndex: 1, ModifyIndex: 9, CreateTime: 0, ModifyTime: 0 },
            { status: 409 },
          );
        case "/v1/var/missing":
          return new Response("variable not found", { status: 404 });
        case "/v1/var/lk":
          return Response.json({
            Path: "lk",
            Items: {},
            Lock: { ID: "L1", TTL: 15000, LockDelay: 15000 },
            CreateIndex: 1,
            ModifyIndex: 1,
            CreateTime: 0,
            ModifyTime: 0,
          });
        case "/v1/vars": {
          // Three pages of two; the token is the index of the next page.
          const all = ["a", "b", "c", "d", "e"].map((p, i) => ({ Path: p, CreateIndex: i, ModifyIndex: i, CreateTime: 0, ModifyTime: 0 }));
          const start = Number(url.searchParams.get("next_token") ?? "0");
          const per = Number(url.searchParams.get("per_page") ?? "1000");
          const page = all.slice(start, start + per);
          const headers: Record<string, string> = { ...meta };
          if (start + per < all.length) headers["X-Edgenode-NextToken"] = String(start + per);
          return Response.json(page, { headers });
        }
        case "/v1/denied":
          return new Response("Permission denied", { status: 403 });
        case "/v1/huge":
          return new Response(new Uint8Array(MAX_RESPONSE_BYTES + 1));
        case "/v1/operator/snapshot":
          return new Response("body", { headers: { Digest: "sha-256=abc=", "X-Edgenode-Index": "5" } });
        default:
          return new Response(`Not found: ${url.pathname}`, { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));

const last = () => seen[seen.length - 1]!;

describe("ApiClient", () => {
  test("region, stale, index and wait go in the query; presence flags carry no =; token in the header", async () => {
    const c = new ApiClient({ address: `${base}/`, token: "s3cret", region: "eu" });
    const r = await getVar(c, "app/x", { stale: true, index: 7, waitMs: 1500 });
    expect(r.variable?.Items).toEqual({ a: "1" });
    expect(r.meta).toEqual({ index: 42, knownLeader: true, lastContactMs: 7 });
    const s = last();
    expect(s.token).toBe("s3cret");
    expect(s.url.searchParams.get("region")).toBe("eu");
    expect(s.url.searchParams.get("index")).toBe("7");
    expect(s.url.searchParams.get("wait")).toBe("1500ms");
    expect(s.url.search).toContain("stale");
    expect(s.url.search).not.toContain("stale=");
    await lockAcquire(c, "lk", { ttl: "10s" });
    expect(last().url.search).toMatch(/[?&]lock-acquire(&|$)/);
    expect(JSON.parse(last().body)).toEqual({ Lock: { TTL: "10s" } });
  });

  test("no token and no region: neither header nor parameter", async () => {
    const c = new ApiClient({ address: base });
    await getVar(c, "app/x");
    expect(last().token).toBeNull();
    expect(last().url.search).toBe("");
  });

  test("paths are escaped segment by segment", async () => {
    const c = new ApiClient({ address: base });
    await getVar(c, "a b/c");
    expect(last().url.pathname).toBe("/v1/var/a%20b/c");
  });

  test("404 on a variable is undefined, not an error", async () => {
    const c = new ApiClient({ address: base });
    expect((await getVar(c, "missing")).variable).toBeUndefined();
  });

  test("errors carry status and the server's plain-text message", async () => {
    const c = new ApiClient({ address: base });
    const e = await c.json({ method: "GET", path: "/v1/denied" }).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(403);
    expect(e.message).toContain("Permission denied");
  });

  test("a 409 keeps the current object as body and names its ModifyIndex", async () => {
    const c = new ApiClient({ address: base });
    const e = await putVar(c, "app/x", { a: "3" }, { cas: 1 }).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(409);
    expect(e.body.ModifyIndex).toBe(9);
    expect(e.message).toContain("ModifyIndex is 9");
    expect(last().url.searchParams.get("cas")).toBe("1");
    expect(JSON.parse(last().body)).toEqual({ Items: { a: "3" } });
  });

  test("bodies above the limit are refused", async () => {
    const c = new ApiClient({ address: base });
    const e = await c.json({ method: "GET", path: "/v1/huge" }).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.message).toContain("exceeds the client's limit");
  });

  test("listing follows next tokens through every page", async () => {
    const c = new ApiClient({ address: base });
    const before = seen.length;
    const all = await listAllVars(c, "", { perPage: 2 });
    expect(all.map((v) => v.Path)).toEqual(["a", "b", "c", "d", "e"]);
    expect(seen.length - before).toBe(3);
  });

  test("snapshot save exposes index and digest and leaves the body unread", async () => {
    const c = new ApiClient({ address: base });
    const d = await snapshotSave(c, { stale: true });
    expect(d.index).toBe(5);
    expect(d.digest).toBe("abc=");
    expect(await new Response(d.body).text()).toBe("body");
    expect(last().url.search).toBe("?stale");
  });

  test("Digest header parsing", () => {
    expect(parseDigest("sha-256=AAAA")).toBe("AAAA");
    expect(parseDigest("md5=xx, SHA-256=Zm9v+/==")).toBe("Zm9v+/==");
    expect(parseDigest("sha-512=AAAA")).toBeUndefined();
    expect(parseDigest(null)).toBeUndefined();
  });

  test("an unreachable agent is an ApiError with status 0 naming the address", async () => {
    const addr = `http://127.0.0.1:${freePort()}`;
    const c = new ApiClient({ address: addr });
    const e = await getVar(c, "x").catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(0);
    expect(e.message).toContain(addr);
  });

  test("a bad address is refused up front", () => {
    expect(() => new ApiClient({ address: "ftp://x" })).toThrow("scheme must be http or https");
    expect(() => new ApiClient({ address: "not a url" })).toThrow("invalid address");
  });

  test("a request past its timeout fails with a timeout message", async () => {
    const slow = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async () => {
        await Bun.sleep(2000);
        return new Response("late");
      },
    });
    try {
      const c = new ApiClient({ address: `http://127.0.0.1:${slow.port}` });
      const e = await c.json({ method: "GET", path: "/v1/x", query: { timeoutMs: 100 } }).catch((x) => x);
      expect(e).toBeInstanceOf(ApiError);
      expect(e.message).toContain("timed out after 100 ms");
    } finally {
      slow.stop(true);
    }
  });
});
