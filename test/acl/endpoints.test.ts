// ACLs end to end through a real in-process server and its HTTP app: anonymous access, bootstrap,
// management and client tokens, policies, secrets shown once, operator routes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { EdgeError } from "../../src/lib/errors.ts";
import { startAgent, type Agent } from "./harness.ts";

// Each test makes many raft writes; on a loaded 2-core box the default 5 s is too tight.
setDefaultTimeout(30_000);

// Each describe block runs on its own agent with what it needs set up in its beforeAll, so any test
// passes alone and in any order.
let a: Agent;
let mgmt = ""; // the bootstrap secret of `a`
let mgmtAccessor = "";

/** Starts `a` with ACLs on; bootstraps it unless `bootstrap` is false; returns the bootstrap reply. */
function onFreshAgent(bootstrap = true, more: () => Promise<void> = async () => {}): { first: () => { status: number; json: () => any } } {
  let first: { status: number; json: () => any } | undefined;
  beforeAll(async () => {
    a = await startAgent(true);
    if (bootstrap) {
      first = await a.req("POST", "/v1/acl/bootstrap");
      if (first.status !== 200) throw new Error(`bootstrap: ${first.status}`);
      mgmt = first.json().SecretID;
      mgmtAccessor = first.json().AccessorID;
    }
    await more();
  }, 30_000);
  afterAll(async () => {
    await a?.stop();
  });
  return { first: () => first! };
}

const RULES = `
variables {
  path "app/*"    { capabilities = ["read", "list"] }
  path "app/rw/*" { capabilities = ["read", "list", "write"] }
}
`;

describe("before bootstrap", () => {
  onFreshAgent(false);

  test("anonymous requests are denied, except health, status and bootstrap", async () => {
    for (const [m, p] of [
      ["GET", "/v1/var/app/x"],
      ["PUT", "/v1/var/app/x"],
      ["GET", "/v1/vars"],
      ["GET", "/v1/agent/self"],
      ["GET", "/v1/metrics"],
      ["GET", "/v1/regions"],
      ["GET", "/v1/operator/raft/configuration"],
      ["PUT", "/v1/operator/raft/transfer-leadership"],
      ["GET", "/v1/acl/tokens"],
      ["GET", "/v1/acl/token/self"],
      ["GET", "/v1/acl/policies"],
    ] as const) {
      const r = await a.req(m, p, m === "PUT" ? { body: { Items: { a: "b" } } } : {});
      expect([m, p, r.status, r.text]).toEqual([m, p, 403, "Permission denied"]);
    }
    expect((await a.req("GET", "/v1/agent/health")).status).toBe(200);
    expect((await a.req("GET", "/v1/status/leader")).status).toBe(200);
    expect((await a.req("GET", "/v1/status/peers")).status).toBe(200);
  });

  test("an unknown token is denied like no token", async () => {
    expect((await a.req("GET", "/v1/var/app/x", { token: crypto.randomUUID() })).status).toBe(403);
    expect((await a.req("GET", "/v1/var/app/x", { bearer: "x".repeat(5000) })).status).toBe(403);
  });
});

describe("bootstrap", () => {
  const boot = onFreshAgent();

  test("once: returns the management token with its secret; again: 400", async () => {
    const r = boot.first();
    expect(r.status).toBe(200);
    const t = r.json();
    expect(Object.keys(t).sort()).toEqual([
      "AccessorID",
      "CreateIndex",
      "CreateTime",
      "Global",
      "ModifyIndex",
      "Name",
      "Policies",
      "SecretID",
      "Type",
    ]);
    expect(t.Type).toBe("management");
    expect(t.Policies).toEqual([]);
    expect(t.CreateIndex).toBeGreaterThan(0);
    expect(t.SecretID).toMatch(/^[0-9a-f-]{36}$/);
    expect(t.AccessorID).not.toBe(t.SecretID);
    const again = await a.req("POST", "/v1/acl/bootstrap");
    expect(again.status).toBe(400);
    expect(again.text).toContain("ACL bootstrap already done");
    // Even a management token cannot bootstrap twice.
    expect((await a.req("POST", "/v1/acl/bootstrap", { token: mgmt })).status).toBe(400);
  });

  test("only the hash is stored", () => {
    const stored = a.server.state.tokenByAccessor(mgmtAccessor);
    expect(stored?.SecretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(mgmt);
  });
});

describe("management token", () => {
  onFreshAgent();

  test("can do everything", async () => {
    const put = await a.req("PUT", "/v1/var/ops/x", { token: mgmt, body: { Items: { k: "v" } } });
    expect(put.status).toBe(200);
    expect((await a.req("GET", "/v1/var/ops/x", { token: mgmt })).json().Items).toEqual({ k: "v" });
    expect((await a.req("GET", "/v1/vars", { bearer: mgmt })).status).toBe(200);
    expect((await a.req("GET", "/v1/agent/self", { token: mgmt })).status).toBe(200);
    expect((await a.req("GET", "/v1/metrics", { token: mgmt })).status).toBe(200);
    expect((await a.req("GET", "/v1/regions", { token: mgmt })).status).toBe(200);
    const conf = await a.req("GET", "/v1/operator/raft/configuration", { token: mgmt });
    expect(conf.status).toBe(200);
    expect(conf.json().Servers).toHaveLength(1);
    // Authorized, then refused on its merits (no such peer) rather than for permissions.
    expect((await a.req("DELETE", "/v1/operator/raft/peer?id=nobody", { token: mgmt })).status).toBe(404);
    expect((await a.req("DELETE", "/v1/var/ops/x", { token: mgmt })).status).toBe(200);
    expect(() => a.acl.authorize("Operator.SnapshotSave", {}, mgmt)).not.toThrow();
    expect(() => a.acl.authorize("Operator.SnapshotRestore", {}, mgmt)).not.toThrow();
  });

  test("token self shows the token without its secret", async () => {
    const r = await a.req("GET", "/v1/acl/token/self", { token: mgmt });
    expect(r.status).toBe(200);
    expect(r.json().AccessorID).toBe(mgmtAccessor);
    expect(r.json().SecretID).toBeUndefined();
    expect(r.text).not.toContain(mgmt);
  });
});

describe("policies and client tokens", () => {
  // Two policies, a read token and two variables; tests that change a token or policy make their own.
  let client = "";
  let clientAccessor = "";
  onFreshAgent(true, async () => {
    for (const [name, rules] of [
      ["app-read", RULES],
      ["ops", 'operator { policy = "write" }\nagent { policy = "read" }'],
    ]) {
      if ((await a.req("PUT", `/v1/acl/policy/${name}`, { token: mgmt, body: { Rules: rules } })).status !== 200)
        throw new Error(`policy ${name}`);
    }
    const t = (
      await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "reader", Type: "client", Policies: ["app-read"] } })
    ).json();
    client = t.SecretID;
    clientAccessor = t.AccessorID;
    await a.req("PUT", "/v1/var/app/x", { token: mgmt, body: { Items: { a: "1" } } });
    await a.req("PUT", "/v1/var/other/x", { token: mgmt, body: { Items: { a: "1" } } });
  });

  test("invalid rules are refused with their position", async () => {
    const r = await a.req("PUT", "/v1/acl/policy/bad", {
      token: mgmt,
      body: { Rules: 'variables {\n  path "a/*" { capabilities = ["fly"] }\n}' },
    });
    expect(r.status).toBe(400);
    expect(r.text).toBe('invalid policy rules: 2:32: unknown capability "fly"; expected one of read, list, write, destroy, deny');
    expect((await a.req("GET", "/v1/acl/policy/bad", { token: mgmt })).status).toBe(404);
  });

  test("policy apply, info, list", async () => {
    const r = await a.req("PUT", "/v1/acl/policy/app-read", { token: mgmt, body: { Description: "app reader", Rules: RULES } });
    expect(r.status).toBe(200);
    expect(
      (
        await a.req("POST", "/v1/acl/policy/ops", {
          token: mgmt,
          body: { Rules: 'operator { policy = "write" }\nagent { policy = "read" }' },
        })
      ).status,
    ).toBe(200);
    const info = (await a.req("GET", "/v1/acl/policy/app-read", { token: mgmt })).json();
    expect(info).toMatchObject({ Name: "app-read", Description: "app reader", Rules: RULES });
    expect(info.CreateIndex).toBeGreaterThan(0);
    const list = (await a.req("GET", "/v1/acl/policies", { token: mgmt })).json();
    expect(list.map((p: { Name: string }) => p.Name)).toEqual(["app-read", "ops"]);
    expect(list[0].Rules).toBeUndefined();
    // The name in the body must match the URL.
    expect((await a.req("PUT", "/v1/acl/policy/x", { token: mgmt, body: { Name: "y", Rules: "" } })).status).toBe(400);
  });

  test("a client token needs an existing policy", async () => {
    const r = await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "c", Type: "client", Policies: ["nope"] } });
    expect(r.status).toBe(400);
    expect(r.text).toContain('policy "nope" does not exist');
    expect((await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "c", Type: "client", Policies: [] } })).status).toBe(400);
  });

  test("token create shows the secret once; reads never do", async () => {
    const r = await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "reader-once", Type: "client", Policies: ["app-read"] } });
    expect(r.status).toBe(200);
    const t = r.json();
    const secret = t.SecretID as string;
    const accessor = t.AccessorID as string;
    expect(secret).toMatch(/^[0-9a-f-]{36}$/);
    expect(t).toMatchObject({ Name: "reader-once", Type: "client", Policies: ["app-read"] });
    for (const path of ["/v1/acl/tokens", `/v1/acl/token/${accessor}`, "/v1/acl/token/self"]) {
      const rr = await a.req("GET", path, { token: path.endsWith("self") ? secret : mgmt });
      expect([path, rr.status]).toEqual([path, 200]);
      expect(rr.text).not.toContain(secret);
      expect(rr.text).not.toContain(mgmt);
      expect(rr.text).not.toContain("SecretID");
      expect(rr.text).not.toContain("SecretHash");
    }
    const list = (await a.req("GET", "/v1/acl/tokens", { token: mgmt })).json();
    expect(list.map((x: { AccessorID: string }) => x.AccessorID)).toEqual(expect.arrayContaining([accessor, clientAccessor, mgmtAccessor]));
  });

  test("a client token is limited by its policy", async () => {
    const cases: [string, string, unknown, number][] = [
      ["GET", "/v1/var/app/x", undefined, 200],
      ["PUT", "/v1/var/app/x", { Items: { a: "2" } }, 403],
      ["PUT", "/v1/var/app/rw/y", { Items: { a: "2" } }, 200],
      ["PUT", "/v1/var/app/rw/y?lock-acquire", { Lock: { TTL: "10s" } }, 200],
      ["DELETE", "/v1/var/app/rw/y", undefined, 403], // write is not destroy
      ["GET", "/v1/var/other/x", undefined, 403],
      ["PUT", "/v1/var/other/x", { Items: { a: "2" } }, 403],
      ["GET", "/v1/vars?prefix=app/", undefined, 200],
      ["GET", "/v1/vars", undefined, 403], // would list other/
      ["GET", "/v1/vars?prefix=other/", undefined, 403],
      ["GET", "/v1/agent/self", undefined, 403],
      ["GET", "/v1/metrics", undefined, 403],
      ["GET", "/v1/regions", undefined, 200],
      ["GET", "/v1/operator/raft/configuration", undefined, 403],
      ["GET", "/v1/acl/tokens", undefined, 403],
      ["GET", `/v1/acl/token/${clientAccessor}`, undefined, 200], // its own
      ["GET", `/v1/acl/token/${mgmtAccessor}`, undefined, 403],
      ["PUT", "/v1/acl/token", { Name: "x", Type: "management" }, 403],
      ["GET", "/v1/acl/policy/app-read", undefined, 200], // its own
      ["GET", "/v1/acl/policy/ops", undefined, 403],
      ["PUT", "/v1/acl/policy/app-read", { Rules: 'variables { path "*" { capabilities = ["write"] } }' }, 403],
      ["DELETE", `/v1/acl/token/${mgmtAccessor}`, undefined, 403],
      ["POST", "/v1/acl/bootstrap", undefined, 400], // anyone may ask; it is done
    ];
    for (const [m, p, body, want] of cases) {
      const r = await a.req(m, p, { token: client, ...(body !== undefined ? { body } : {}) });
      expect([m, p, r.status]).toEqual([m, p, want]);
    }
    const own = (await a.req("GET", "/v1/acl/policies", { token: client })).json();
    expect(own.map((p: { Name: string }) => p.Name)).toEqual(["app-read"]);
    const listed = (await a.req("GET", "/v1/vars?prefix=app/", { token: client })).json();
    expect(JSON.stringify(listed)).toContain("app/x");
  });

  test("raft stats need operator read, as the raft configuration does, with or without ?stale", async () => {
    const op = (await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "op-stats", Type: "client", Policies: ["ops"] } })).json()
      .SecretID as string;
    for (const path of ["/v1/operator/raft/stats", "/v1/operator/raft/stats?stale"]) {
      expect([path, (await a.req("GET", path, {})).status]).toEqual([path, 403]);
      expect([path, (await a.req("GET", path, { token: client })).status]).toEqual([path, 403]);
      const r = await a.req("GET", path, { token: op });
      expect([path, r.status]).toEqual([path, 200]);
      expect(r.json().Servers).toHaveLength(1);
    }
  });

  test("operator writes and snapshots need management even with operator write", async () => {
    const r = await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "op", Type: "client", Policies: ["ops"] } });
    const op = r.json().SecretID as string;
    expect((await a.req("GET", "/v1/operator/raft/configuration", { token: op })).status).toBe(200);
    expect((await a.req("GET", "/v1/agent/self", { token: op })).status).toBe(200);
    expect((await a.req("DELETE", "/v1/operator/raft/peer?id=nobody", { token: op })).status).toBe(403);
    expect((await a.req("PUT", "/v1/operator/raft/transfer-leadership", { token: op })).status).toBe(403);
    for (const m of ["Operator.SnapshotSave", "Operator.SnapshotRestore"]) {
      let err: unknown;
      try {
        a.acl.authorize(m, {}, op);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EdgeError);
      expect((err as EdgeError).code).toBe("PERMISSION_DENIED");
      expect(() => a.acl.authorize(m, {}, undefined)).toThrow("Permission denied");
    }
  });

  test("snapshot save and restore over HTTP need a management token", async () => {
    const op = (await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "op2", Type: "client", Policies: ["ops"] } })).json()
      .SecretID as string;
    for (const token of [undefined, client, op]) {
      const save = await a.req("GET", "/v1/operator/snapshot", token ? { token } : {});
      expect([token === undefined ? "anonymous" : "client", save.status, save.text]).toEqual([
        token === undefined ? "anonymous" : "client",
        403,
        "Permission denied",
      ]);
      const restore = await fetch(`${a.url}/v1/operator/snapshot`, {
        method: "PUT",
        headers: token ? { "X-Edgenode-Token": token } : {},
        body: "not a snapshot",
      });
      expect(restore.status).toBe(403);
      await restore.body?.cancel();
    }
    const res = await fetch(`${a.url}/v1/operator/snapshot`, { headers: { "X-Edgenode-Token": mgmt } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });

  test("token update keeps the secret and never shows it", async () => {
    const own = (
      await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "reader", Type: "client", Policies: ["app-read"] } })
    ).json();
    const [client, clientAccessor] = [own.SecretID as string, own.AccessorID as string];
    expect((await a.req("GET", "/v1/operator/raft/configuration", { token: client })).status).toBe(403);
    const r = await a.req("POST", `/v1/acl/token/${clientAccessor}`, {
      token: mgmt,
      body: { Name: "reader2", Type: "client", Policies: ["app-read", "ops"] },
    });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ AccessorID: clientAccessor, Name: "reader2", Policies: ["app-read", "ops"] });
    expect(r.json().SecretID).toBeUndefined();
    // The same secret now carries both policies.
    expect((await a.req("GET", "/v1/operator/raft/configuration", { token: client })).status).toBe(200);
    // The type cannot change; an unknown accessor is 404.
    expect((await a.req("POST", `/v1/acl/token/${clientAccessor}`, { token: mgmt, body: { Type: "management" } })).status).toBe(400);
    expect((await a.req("POST", `/v1/acl/token/${crypto.randomUUID()}`, { token: mgmt, body: { Policies: ["ops"] } })).status).toBe(404);
  });

  test("a deleted policy grants nothing; a deleted token stops working", async () => {
    expect((await a.req("PUT", "/v1/acl/policy/ops-doomed", { token: mgmt, body: { Rules: 'operator { policy = "read" }' } })).status).toBe(
      200,
    );
    const own = (
      await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "doomed", Type: "client", Policies: ["app-read", "ops-doomed"] } })
    ).json();
    const [client, clientAccessor] = [own.SecretID as string, own.AccessorID as string];
    expect((await a.req("GET", "/v1/operator/raft/configuration", { token: client })).status).toBe(200);
    expect((await a.req("DELETE", "/v1/acl/policy/ops-doomed", { token: mgmt })).status).toBe(200);
    expect((await a.req("GET", "/v1/operator/raft/configuration", { token: client })).status).toBe(403);
    expect((await a.req("GET", "/v1/var/app/x", { token: client })).status).toBe(200);
    expect((await a.req("DELETE", `/v1/acl/token/${clientAccessor}`, { token: mgmt })).status).toBe(200);
    expect((await a.req("GET", "/v1/var/app/x", { token: client })).status).toBe(403);
    expect((await a.req("GET", `/v1/acl/token/${clientAccessor}`, { token: mgmt })).status).toBe(404);
    expect((await a.req("DELETE", `/v1/acl/token/${clientAccessor}`, { token: mgmt })).status).toBe(404);
  });
});

describe("ACLs disabled", () => {
  let off: Agent;
  beforeAll(async () => {
    off = await startAgent(false);
  }, 30_000);
  afterAll(async () => {
    await off?.stop();
  });
  test("everything is open and the ACL endpoints say so", async () => {
    expect((await off.req("PUT", "/v1/var/a/b", { body: { Items: { x: "y" } } })).status).toBe(200);
    expect((await off.req("GET", "/v1/agent/self")).status).toBe(200);
    expect((await off.req("GET", "/v1/metrics")).status).toBe(200);
    const r = await off.req("POST", "/v1/acl/bootstrap");
    expect([r.status, r.text]).toEqual([400, "ACL support disabled"]);
    expect((await off.req("GET", "/v1/acl/tokens")).status).toBe(400);
    expect(off.server.authorize).toBeUndefined();
  });
});
