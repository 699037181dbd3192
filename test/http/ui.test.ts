// The /ui pages through the Hono app with a fake backend: the cluster page's servers and leader, the
// red state, the token form that shows nothing else, the cookie, and the variables pages.
import { describe, expect, test } from "bun:test";
import { permissionDenied, EdgeError } from "../../src/lib/errors.ts";
import type { Backend, CallResult, QueryOptions } from "../../src/server/backend.ts";
import { app, callOnlyBackend } from "./ui_backend.ts";

const META = { index: 1, knownLeader: true, lastContactMs: 0 };
const SERVERS = ["alpha", "bravo", "charlie"].map((n, i) => ({
  ID: `id-${n}`,
  Node: n,
  Address: `127.0.0.1:${4700 + i}`,
  Leader: i === 1,
  Voter: true,
  Version: "0.2.0",
}));

interface FakeOpts {
  /** Tokens that may read everything; any other token (or none) is refused when set. */
  acl?: Set<string>;
  noLeader?: boolean;
  unhealthy?: string;
  /** A server whose applied index trails the leader's commit by 1000 entries. */
  lagging?: string;
  /** A server that did not answer the raft stats. */
  silent?: string;
}

const CLUSTER_ID = "c1d2e3f4-0000-4000-8000-00000000abcd";

function fake(o: FakeOpts = {}, calls: { method: string; q: QueryOptions }[] = []): Backend {
  return callOnlyBackend(async (method, args, q): Promise<CallResult> => {
    calls.push({ method, q });
    if (o.acl && !(q.token && o.acl.has(q.token))) throw permissionDenied();
    switch (method) {
      case "Operator.RaftGetConfiguration":
        return {
          reply: { Index: 5, ClusterVersion: "0.2.0", Servers: SERVERS.map((s) => ({ ...s, Leader: s.Leader && !o.noLeader })) },
          meta: META,
        };
      case "Operator.AutopilotHealth":
        if (o.noLeader) throw new EdgeError("NO_LEADER", "No cluster leader");
        return {
          reply: {
            Healthy: !o.unhealthy,
            FailureTolerance: o.unhealthy ? 0 : 1,
            Servers: SERVERS.map((s, i) => ({
              ...s,
              Name: s.Node,
              Healthy: s.Node !== o.unhealthy,
              LastContact: "10ms",
              LastTerm: 2,
              LastIndex: 100 - i,
              StableSince: "",
            })),
          },
          meta: META,
        };
      case "Operator.RaftStats":
        return {
          reply: {
            ClusterID: CLUSTER_ID,
            Leader: "id-bravo",
            Servers: SERVERS.map((s) => {
              const who = { ID: s.ID, Node: s.Node, Address: s.Address };
              if (s.Node === o.silent) return { ...who, Error: "Status.RaftStats: no answer within 1000 ms" };
              const applied = s.Node === o.lagging ? 1100 : 2100;
              return {
                ...who,
                State: s.Leader ? "leader" : "follower",
                Term: 2,
                LastIndex: 2100,
                CommitIndex: 2100,
                AppliedIndex: applied,
                Lag: 2100 - applied,
              };
            }),
          },
          meta: META,
        };
      case "Operator.AutopilotGetConfiguration":
        return { reply: { MaxTrailingLogs: 250 }, meta: META };
      case "Var.List":
        return {
          reply: { vars: [{ Path: `${args.prefix}x/y`, CreateIndex: 3, ModifyIndex: 4, CreateTime: 1, ModifyTime: 2 }], nextToken: "n1" },
          meta: META,
        };
      case "Var.Get":
        if (args.path === "missing") return { reply: null, meta: META };
        return {
          reply: {
            Path: args.path,
            Items: { k: "<b>v</b>" },
            CreateIndex: 3,
            ModifyIndex: 4,
            CreateTime: 1,
            ModifyTime: 2,
            Lock: { TTL: 15000, LockDelay: 0 },
          },
          meta: META,
        };
    }
    throw new Error(`unexpected ${method}`);
  });
}

/** The pages' one script tag (the version is a hash of the script). */
const SCRIPT_TAG = /<script src="\/ui\/app\.js\?v=[0-9a-f]{16}" defer=""><\/script>/;

describe("ui", () => {
  test("the cluster page lists every server, the leader, the region and the failure tolerance", async () => {
    for (const path of ["/ui/", "/ui/cluster"]) {
      const res = await app(fake()).request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      const html = await res.text();
      expect(html).toStartWith('<!DOCTYPE html><html lang="en">');
      for (const s of SERVERS) expect(html).toContain(`data-server="${s.Node}"`);
      expect(html).toMatch(/id="leader"[^>]*>bravo \(127\.0\.0\.1:4701\)/);
      expect(html).toContain("edge-1");
      expect(html).toContain('http-equiv="refresh"');
      expect(html).toContain("Healthy");
      // Nothing from outside and no inline script: the one script tag is the page's own /ui/app.js.
      expect(html.replace(SCRIPT_TAG, "")).not.toMatch(/<script|https?:\/\/(?!127)/);
    }
  });

  test("no leader and an unhealthy server are red", async () => {
    const none = await (await app(fake({ noLeader: true })).request("/ui/")).text();
    expect(none).toContain('class="banner bad"');
    expect(none).toContain("No leader");
    const sick = await (await app(fake({ unhealthy: "charlie" })).request("/ui/")).text();
    expect(sick).toContain('class="banner bad"');
    expect(sick).toContain("Unhealthy: charlie");
  });

  test("with no leader known the page does not ask for health; a health call that hangs is cut short", async () => {
    const calls: { method: string; q: QueryOptions }[] = [];
    await app(fake({ noLeader: true }, calls)).request("/ui/");
    expect(calls.map((c) => c.method)).toEqual(["Operator.RaftGetConfiguration"]);
    const b = fake();
    const inner = b.call.bind(b);
    b.call = (method, args, q) => (method === "Operator.AutopilotHealth" ? new Promise(() => {}) : inner(method, args, q));
    const started = performance.now();
    const html = await (await app(b).request("/ui/")).text();
    expect(performance.now() - started).toBeLessThan(4_000);
    expect(html).toContain("Health unknown: no answer from the leader in time");
    expect(html).toContain('data-server="alpha"');
  });

  test("the cluster id, each server's commit and applied index and lag; a server behind or silent is red with why", async () => {
    const html = await (await app(fake()).request("/ui/")).text();
    expect(html).toMatch(new RegExp(`id="cluster-id"><code>${CLUSTER_ID}</code>`));
    expect(html).toContain('class="banner ok"');
    for (const h of ["Commit index", "Applied index", "Lag"]) expect(html).toContain(h);
    expect(html).toMatch(
      /data-server="alpha">(?:(?!<\/tr>).)*<td class="num">2100<\/td><td class="num">2100<\/td><td class="num">0<\/td>/s,
    );
    const lagging = await (await app(fake({ lagging: "charlie" })).request("/ui/")).text();
    expect(lagging).toContain('class="banner bad"');
    expect(lagging).toContain("Behind: charlie (1000 entries behind, over max_trailing_logs 250)");
    expect(lagging).toMatch(/data-server="charlie" class="bad"/);
    expect(lagging).not.toMatch(/data-server="alpha" class="bad"/);
    const silent = await (await app(fake({ silent: "alpha" })).request("/ui/")).text();
    expect(silent).toContain('class="banner bad"');
    expect(silent).toContain("Behind: alpha (Status.RaftStats: no answer within 1000 ms)");
    expect(silent).toContain("no answer: Status.RaftStats: no answer within 1000 ms");
    expect(silent).toMatch(/data-server="alpha" class="bad"/);
  });

  test("a stats call that hangs is cut short and said so; a refused one is the token form", async () => {
    const b = fake();
    const inner = b.call.bind(b);
    b.call = (method, args, q) => (method === "Operator.RaftStats" ? new Promise(() => {}) : inner(method, args, q));
    const started = performance.now();
    const html = await (await app(b).request("/ui/")).text();
    expect(performance.now() - started).toBeLessThan(4_000);
    expect(html).toContain('class="banner bad"');
    expect(html).toContain("Raft stats unknown: no raft stats in time");
    expect(html).toMatch(/id="cluster-id">unknown</);
    expect(html).toContain('data-server="alpha"');
    b.call = (method, args, q) => (method === "Operator.RaftStats" ? Promise.reject(permissionDenied()) : inner(method, args, q));
    expect((await app(b).request("/ui/")).status).toBe(403);
  });

  test("an error other than a refusal is a red page that keeps reloading", async () => {
    const b = fake();
    b.call = async () => {
      throw new EdgeError("NO_LEADER", "No cluster leader");
    };
    for (const path of ["/ui/", "/ui/vars", "/ui/var/a"]) {
      const res = await app(b).request(path);
      expect(res.status).toBe(503);
      const html = await res.text();
      expect(html).toContain('class="banner bad"');
      expect(html).toContain("No cluster leader");
      expect(html).toContain('http-equiv="refresh"');
    }
  });

  test("with ACLs on and no token only the token form renders: no server name or ID", async () => {
    for (const path of ["/ui/", "/ui/vars?prefix=", "/ui/var/a/b"]) {
      const res = await app(fake({ acl: new Set(["good"]) })).request(path);
      expect(res.status).toBe(403);
      const html = await res.text();
      expect(html).toStartWith("<!DOCTYPE html>");
      expect(html).toContain('action="/ui/token"');
      for (const s of SERVERS) {
        expect(html).not.toContain(s.Node);
        expect(html).not.toContain(s.ID);
      }
      expect(html).not.toContain("edge-1");
    }
  });

  test("the token form sets an HttpOnly SameSite=Strict cookie the pages then read with", async () => {
    const calls: { method: string; q: QueryOptions }[] = [];
    const a = app(fake({ acl: new Set(["good"]) }, calls));
    const post = await a.request("/ui/token", {
      method: "POST",
      body: new URLSearchParams({ token: "good", back: "/ui/vars?prefix=a" }),
    });
    expect(post.status).toBe(303);
    expect(post.headers.get("location")).toBe("/ui/vars?prefix=a");
    const cookie = post.headers.get("set-cookie") ?? "";
    expect(cookie).toContain("edgenode_ui_token=good");
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/ui");
    const page = await a.request("/ui/", { headers: { cookie: "edgenode_ui_token=good" } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-server="alpha"');
    expect(calls.at(-1)?.q.token).toBe("good");
    const bad = await a.request("/ui/", { headers: { cookie: "edgenode_ui_token=wrong" } });
    expect(bad.status).toBe(403);
    expect(await bad.text()).toContain("This token may not read this page");
    expect(cookie).not.toContain("Secure");
    const tls = await a.request("https://edge.local/ui/token", { method: "POST", body: new URLSearchParams({ token: "good" }) });
    expect(tls.headers.get("set-cookie")).toContain("Secure");
    // An open redirect is refused: back must stay under /ui/.
    const evil = await a.request("/ui/token", { method: "POST", body: new URLSearchParams({ token: "good", back: "//evil.example/" }) });
    expect(evil.headers.get("location")).toBe("/ui/");
  });

  test("the variables pages list, paginate and show one variable escaped", async () => {
    const list = await (await app(fake()).request("/ui/vars?prefix=app/")).text();
    expect(list).toContain('href="/ui/var/app/x/y"');
    expect(list).toContain("next_token=n1");
    const calls: { method: string; q: QueryOptions }[] = [];
    const small = await (await app(fake({}, calls)).request("/ui/vars?prefix=app/&per_page=2")).text();
    expect(small).toContain("per_page=2&amp;next_token=n1");
    expect((await app(fake()).request("/ui/vars?per_page=0")).status).toBe(400);
    const one = await app(fake()).request("/ui/var/app/x/y");
    expect(one.status).toBe(200);
    const html = await one.text();
    expect(html).toContain("&lt;b&gt;v&lt;/b&gt;");
    expect(html).toContain("held");
    expect((await app(fake()).request("/ui/var/missing")).status).toBe(404);
  });

  test("/ui/app.js is served as JavaScript under its version, with a CSP, small and with no eval", async () => {
    const html = await (await app(fake()).request("/ui/")).text();
    const src = /<script src="([^"]+)"/.exec(html)?.[1] ?? "";
    expect(src).toMatch(/^\/ui\/app\.js\?v=[0-9a-f]{16}$/);
    const res = await app(fake()).request(src);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toContain("immutable");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const js = await res.text();
    expect(() => new Function(js)).not.toThrow();
    expect(js.length).toBeLessThan(6 * 1024);
    expect(js).not.toMatch(/\beval\(|new Function|innerHTML|document\.write/);
    // The contract with the pages: the token in sessionStorage, sent as the header.
    expect(js).toContain("sessionStorage");
    expect(js).toContain('"X-Edgenode-Token"');
    // Any other version (a page rendered by an older binary) is revalidated, never kept.
    const stale = await app(fake()).request("/ui/app.js?v=0000000000000000");
    expect(stale.headers.get("cache-control")).toBe("no-cache");
    expect(await stale.text()).toBe(js);
  });

  test("pages allow scripts and fetch from this server only; the meta refresh is for JavaScript off", async () => {
    for (const [path, refresh] of [
      ["/ui/", true],
      ["/ui/vars?prefix=app/", true],
      ["/ui/var/app/x/y", true],
      ["/ui/var/missing", false],
    ] as const) {
      const res = await app(fake()).request(path);
      const csp = res.headers.get("content-security-policy") ?? "";
      const directives = new Map(csp.split(/;\s*/).map((d) => [d.split(" ")[0], d] as const));
      expect(directives.get("default-src")).toBe("default-src 'none'");
      expect(directives.get("script-src")).toBe("script-src 'self'");
      expect(directives.get("connect-src")).toBe("connect-src 'self'");
      const html = await res.text();
      const head = html.slice(0, html.indexOf("</head>"));
      // In <noscript> inside <head>: with scripting on the browser does not apply it, the script polls.
      if (refresh) {
        expect(head).toContain('<noscript><meta http-equiv="refresh" content="5"/></noscript>');
        expect(html).toContain('<main data-refresh="5">');
      } else {
        expect(html).not.toContain("refresh");
        expect(html).toContain("<main>");
      }
      expect(html.match(/<script/g)?.length).toBe(1);
      expect(head).toMatch(SCRIPT_TAG);
    }
    // The token form has no refresh either (nothing to show until a token is given).
    const form = await (await app(fake({ acl: new Set(["good"]) })).request("/ui/")).text();
    expect(form).not.toContain("refresh");
    expect(form).toMatch(SCRIPT_TAG);
  });

  test("a cross-site POST to /ui/token or /ui/logout is refused and sets no cookie; a same-origin one works", async () => {
    const a = app(fake({ acl: new Set(["good"]) }));
    const post = (url: string, headers: Record<string, string>) =>
      a.request(url, { method: "POST", headers, body: new URLSearchParams({ token: "good" }) });
    const refused: Record<string, string>[] = [
      { origin: "http://evil.example" },
      { origin: "http://localhost:8080" },
      { origin: "null" },
      { origin: "http://localhost", "sec-fetch-site": "cross-site" },
      { origin: "http://localhost", "sec-fetch-site": "same-site" },
      { "sec-fetch-site": "cross-site" },
    ];
    for (const headers of refused) {
      for (const path of ["/ui/token", "/ui/logout"]) {
        const res = await post(`http://localhost${path}`, headers);
        expect(res.status).toBe(403);
        expect(res.headers.get("set-cookie")).toBeNull();
        expect(await res.text()).toContain(`Cross-site request to ${path} refused`);
      }
    }
    // Same origin, as a browser sends it: the cookie is set. The Host header is what Origin must match.
    for (const [url, headers] of [
      ["http://localhost/ui/token", { origin: "http://localhost", "sec-fetch-site": "same-origin" }],
      ["http://127.0.0.1:4646/ui/token", { origin: "http://127.0.0.1:4646" }],
      ["http://127.0.0.1:4646/ui/token", { origin: "http://edge.local:4646", host: "edge.local:4646" }],
      ["https://edge.local/ui/token", { origin: "https://edge.local", host: "edge.local:443" }],
      ["http://localhost/ui/token", {}],
    ] as const) {
      const res = await post(url, headers);
      expect(res.status).toBe(303);
      expect(res.headers.get("set-cookie")).toContain("edgenode_ui_token=good");
    }
    expect((await post("http://127.0.0.1:4646/ui/token", { origin: "http://127.0.0.1:4646", host: "edge.local:4646" })).status).toBe(403);
    const out = await post("http://localhost/ui/logout", { origin: "http://localhost", "sec-fetch-site": "same-origin" });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toContain("edgenode_ui_token=;");
  });

  test("the X-Edgenode-Token header reads the pages, ahead of the cookie, and sets no cookie", async () => {
    const calls: { method: string; q: QueryOptions }[] = [];
    const a = app(fake({ acl: new Set(["good"]) }, calls));
    for (const cookie of [undefined, "edgenode_ui_token=wrong"]) {
      const res = await a.request("/ui/", { headers: { "x-edgenode-token": "good", ...(cookie ? { cookie } : {}) } });
      expect(res.status).toBe(200);
      expect(res.headers.get("set-cookie")).toBeNull();
      const html = await res.text();
      expect(html).toContain('data-server="alpha"');
      expect(html).toContain("Forget token");
      expect(calls.at(-1)?.q.token).toBe("good");
    }
    const bad = await a.request("/ui/vars?prefix=", { headers: { "x-edgenode-token": "wrong" } });
    expect(bad.status).toBe(403);
    expect(await bad.text()).toContain("This token may not read this page");
  });

  // A structural accessibility check until the browser test's (next part of #26): a language, one h1,
  // every visible input labelled, every table header scoped, no positive tabindex.
  test("every page has a language, one h1, labelled inputs and scoped table headers", async () => {
    const pages = [
      await app(fake()).request("/ui/"),
      await app(fake()).request("/ui/vars?prefix=app/"),
      await app(fake()).request("/ui/var/app/x/y"),
      await app(fake({ acl: new Set(["good"]) })).request("/ui/"),
    ];
    for (const res of pages) {
      const html = await res.text();
      expect(html).toMatch(/<html lang="en">/);
      expect(html.match(/<h1>/g)?.length).toBe(1);
      for (const m of html.matchAll(/<input ([^>]*)>/g)) {
        const attrs = m[1] ?? "";
        if (attrs.includes('type="hidden"')) continue;
        const id = /id="([^"]+)"/.exec(attrs)?.[1];
        expect(id).toBeDefined();
        expect(html).toContain(`<label for="${id}">`);
      }
      for (const m of html.matchAll(/<th( [^>]*)?>/g)) expect(m[1] ?? "").toContain('scope="col"');
      expect(html).not.toMatch(/tabindex="[1-9]/);
    }
  });
});
