// The ACL matrix on real processes: every HTTP endpoint of SPEC §3 × {anonymous, unknown
// token, app-read client, app-write client, management} against the expected status, each request
// sent to a random server so that forwarding is covered; then the same tokens after a kill -9 of the
// leader, and after a snapshot restore (a token deleted after the save is back, a later one is gone).
import { beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ok, useCluster, waitFor, withLogs, type ClusterServer } from "./harness.ts";
import { allocPorts, leaderAmong, startConfigured } from "./configured.ts";
import { mulberry32 } from "../support/mulberry32.ts";
import { expectLeaderServesRestored } from "./snapshot_cluster.ts";

setDefaultTimeout(120_000);

const CALLERS = ["anon", "unknown", "read", "write", "mgmt"] as const;
type Caller = (typeof CALLERS)[number];

const READ_RULES = `variables {\n  path "app/*" { capabilities = ["read", "list"] }\n}\n`;
const WRITE_RULES = `variables {\n  path "app/*" { capabilities = ["read", "list", "write", "destroy"] }\n}\n`;

/** Seeded PRNG (mulberry32): which server gets each request and which token header is used. */
const SEED = Number(process.env.EDGENODE_SEED ?? Date.now() % 2 ** 31);
const rand = mulberry32(SEED);

interface Token {
  accessor: string;
  secret: string;
}

let servers: ClusterServer[] = [];
const tokens: Partial<Record<Caller, Token>> = {};

interface Reply {
  status: number;
  text: string;
  bytes: Uint8Array;
  server: string;
}

/** One request with `secret` in X-Edgenode-Token or Authorization: Bearer (chosen at random). */
async function send(
  s: ClusterServer,
  method: string,
  path: string,
  secret: string | undefined,
  body?: unknown,
  raw?: Uint8Array,
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (secret !== undefined) {
    if (rand() < 0.5) headers["X-Edgenode-Token"] = secret;
    else headers.Authorization = `Bearer ${secret}`;
  }
  let payload: string | Uint8Array | undefined;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const r = await fetch(`${s.url}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(20_000) });
  const bytes = new Uint8Array(await r.arrayBuffer());
  return { status: r.status, text: new TextDecoder().decode(bytes.subarray(0, 300)), bytes, server: s.name };
}

function secretOf(c: Caller): string | undefined {
  if (c === "anon") return undefined;
  if (c === "unknown") return crypto.randomUUID();
  const t = tokens[c];
  if (!t) throw new Error(`no token for ${c}`);
  return t.secret;
}

function pick(among: ClusterServer[]): ClusterServer {
  const s = among[Math.floor(rand() * among.length)];
  if (!s) throw new Error("no server to send to");
  return s;
}

/** As management, on any server; throws unless 200. */
async function mgmt(method: string, path: string, body?: unknown): Promise<Reply> {
  const r = await send(pick(servers.filter((s) => s.running)), method, path, tokens.mgmt?.secret, body);
  return ok(r, `${method} ${path} as management on ${r.server}`);
}

async function createToken(name: string, policies: string[]): Promise<Token> {
  const r = await mgmt("POST", "/v1/acl/token", { Name: name, Type: "client", Policies: policies });
  const t = JSON.parse(new TextDecoder().decode(r.bytes)) as { AccessorID: string; SecretID: string };
  return { accessor: t.AccessorID, secret: t.SecretID };
}

async function varExists(path: string): Promise<boolean> {
  const r = await send(pick(servers.filter((s) => s.running)), "GET", `/v1/var/${path}`, tokens.mgmt?.secret);
  if (r.status !== 200 && r.status !== 404) throw new Error(`GET ${path}: ${r.status} ${r.text}`);
  return r.status === 200;
}

/** A row of the matrix: the request a caller makes (after an optional setup) and the status each caller must get. */
interface Row {
  name: string;
  expect: Record<Caller, number>;
  request(c: Caller, run: string): Promise<{ method: string; path: string; body?: unknown; raw?: Uint8Array }>;
  /** After the request: a denied caller must have changed nothing. */
  after?(c: Caller, run: string, status: number): Promise<string | undefined>;
}

const all = (n: number): Record<Caller, number> => ({ anon: n, unknown: n, read: n, write: n, mgmt: n });
const only = (ok: number, who: Caller[]): Record<Caller, number> => {
  const e = all(403);
  for (const c of who) e[c] = ok;
  return e;
};
const get = (path: string) => async () => ({ method: "GET", path });

function rows(): Row[] {
  return [
    { name: "GET status/leader", expect: all(200), request: get("/v1/status/leader") },
    { name: "GET status/peers", expect: all(200), request: get("/v1/status/peers") },
    { name: "GET agent/self", expect: only(200, ["mgmt"]), request: get("/v1/agent/self") },
    // The agent's local routes are guarded by path: a spelling the router decodes to them must be guarded too.
    { name: "GET agent/%73elf (encoded)", expect: only(200, ["mgmt"]), request: get("/v1/agent/%73elf") },
    { name: "GET %6detrics (encoded)", expect: only(200, ["mgmt"]), request: get("/v1/%6detrics") },
    { name: "GET agent/health", expect: all(200), request: get("/v1/agent/health") },
    { name: "GET regions", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/regions") },
    { name: "GET metrics", expect: only(200, ["mgmt"]), request: get("/v1/metrics") },
    { name: "GET metrics prometheus", expect: only(200, ["mgmt"]), request: get("/v1/metrics?format=prometheus") },
    { name: "GET raft configuration", expect: only(200, ["mgmt"]), request: get("/v1/operator/raft/configuration") },
    { name: "GET raft stats", expect: only(200, ["mgmt"]), request: get("/v1/operator/raft/stats") },
    { name: "GET raft stats ?stale", expect: only(200, ["mgmt"]), request: get("/v1/operator/raft/stats?stale") },
    { name: "GET autopilot configuration", expect: only(200, ["mgmt"]), request: get("/v1/operator/autopilot/configuration") },
    {
      // The value in effect set again: a management token's PUT changes nothing the later rows depend on.
      name: "PUT autopilot configuration (same value)",
      expect: only(200, ["mgmt"]),
      request: async () => {
        const cur = JSON.parse(new TextDecoder().decode((await mgmt("GET", "/v1/operator/autopilot/configuration")).bytes)) as {
          MaxTrailingLogs: number;
        };
        return { method: "PUT", path: "/v1/operator/autopilot/configuration", body: { MaxTrailingLogs: cur.MaxTrailingLogs } };
      },
    },
    { name: "GET autopilot health", expect: only(200, ["mgmt"]), request: get("/v1/operator/autopilot/health") },
    {
      name: "DELETE raft peer (bogus id)",
      expect: only(404, ["mgmt"]),
      request: async () => ({ method: "DELETE", path: "/v1/operator/raft/peer?id=no-such-server" }),
    },
    {
      name: "PUT transfer-leadership (bogus id)",
      expect: only(404, ["mgmt"]),
      request: async () => ({ method: "PUT", path: "/v1/operator/raft/transfer-leadership?id=no-such-server" }),
    },
    { name: "GET snapshot", expect: only(200, ["mgmt"]), request: get("/v1/operator/snapshot") },
    { name: "GET snapshot ?stale", expect: only(200, ["mgmt"]), request: get("/v1/operator/snapshot?stale") },
    {
      name: "PUT snapshot (bad body)",
      expect: only(400, ["mgmt"]),
      request: async () => ({ method: "PUT", path: "/v1/operator/snapshot", raw: new TextEncoder().encode("this is not a snapshot file") }),
      after: async () => ((await varExists("app/x")) && (await varExists("other/x")) ? undefined : "state changed"),
    },
    {
      name: "PUT snapshot (2 MiB of garbage)",
      expect: only(400, ["mgmt"]),
      request: async () => ({ method: "PUT", path: "/v1/operator/snapshot", raw: GARBAGE }),
    },
    {
      name: "PUT snapshot?dry-run (valid file)",
      expect: only(200, ["mgmt"]),
      request: async () => ({ method: "PUT", path: "/v1/operator/snapshot?dry-run", raw: savedFile }),
    },
    {
      name: "POST snapshot (bad body)",
      expect: only(400, ["mgmt"]),
      request: async () => ({ method: "POST", path: "/v1/operator/snapshot", raw: new Uint8Array(64) }),
    },
    { name: "GET var app/x", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/var/app/x") },
    // A blocking query is refused at once, not after its wait.
    {
      name: "GET var app/x blocking",
      expect: only(200, ["read", "write", "mgmt"]),
      request: get("/v1/var/app/x?index=999999999&wait=100ms"),
    },
    { name: "GET var app/x ?region=global", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/var/app/x?region=global") },
    { name: "GET var app/x ?stale", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/var/app/x?stale") },
    {
      name: "PUT var app/x",
      expect: only(200, ["write", "mgmt"]),
      request: async (c) => ({ method: "PUT", path: "/v1/var/app/x", body: { Items: { by: c } } }),
    },
    {
      name: "DELETE var app/del-*",
      expect: only(200, ["write", "mgmt"]),
      request: async (c, run) => {
        await mgmt("PUT", `/v1/var/app/del-${c}-${run}`, { Items: { a: "1" } });
        return { method: "DELETE", path: `/v1/var/app/del-${c}-${run}` };
      },
      after: async (c, run, status) =>
        (await varExists(`app/del-${c}-${run}`)) === (status !== 200) ? undefined : "variable state does not match the status",
    },
    // Those who may not touch a path learn only "Permission denied", not what is wrong with their input.
    // (A read of a path no variable can have is simply not found.)
    { name: "GET var app/a//b (bad path)", expect: only(404, ["read", "write", "mgmt"]), request: get("/v1/var/app/a//b") },
    {
      name: "PUT var app/a//b (bad path)",
      expect: only(400, ["write", "mgmt"]),
      request: async () => ({ method: "PUT", path: "/v1/var/app/a//b", body: { Items: { a: "1" } } }),
    },
    {
      name: "PUT var other/a//b (bad path)",
      expect: only(400, ["mgmt"]),
      request: async () => ({ method: "PUT", path: "/v1/var/other/a//b", body: { Items: { a: "1" } } }),
    },
    { name: "GET vars prefix=app/", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/vars?prefix=app/") },
    { name: "GET vars (no prefix)", expect: only(200, ["mgmt"]), request: get("/v1/vars") },
    { name: "GET vars prefix=other/", expect: only(200, ["mgmt"]), request: get("/v1/vars?prefix=other/") },
    { name: "GET var other/x", expect: only(200, ["mgmt"]), request: get("/v1/var/other/x") },
    {
      name: "PUT var other/x",
      expect: only(200, ["mgmt"]),
      request: async (c) => ({ method: "PUT", path: "/v1/var/other/x", body: { Items: { by: c } } }),
    },
    {
      name: "DELETE var other/del-*",
      expect: only(200, ["mgmt"]),
      request: async (c, run) => {
        await mgmt("PUT", `/v1/var/other/del-${c}-${run}`, { Items: { a: "1" } });
        return { method: "DELETE", path: `/v1/var/other/del-${c}-${run}` };
      },
      after: async (c, run, status) =>
        (await varExists(`other/del-${c}-${run}`)) === (status !== 200) ? undefined : "variable state does not match the status",
    },
    {
      name: "PUT lock-acquire app/lock-*",
      expect: only(200, ["write", "mgmt"]),
      request: async (c, run) => ({
        method: "PUT",
        path: `/v1/var/app/lock-${c}-${run}?lock-acquire`,
        body: { Items: { a: "1" }, Lock: { TTL: "30s", LockDelay: "1s" } },
      }),
    },
    {
      name: "PUT lock-acquire other/lock-*",
      expect: only(200, ["mgmt"]),
      request: async (c, run) => ({
        method: "PUT",
        path: `/v1/var/other/lock-${c}-${run}?lock-acquire`,
        body: { Items: { a: "1" }, Lock: { TTL: "30s", LockDelay: "1s" } },
      }),
    },
    {
      name: "PUT lock-renew app/held-*",
      expect: only(200, ["write", "mgmt"]),
      request: async (c, run) => {
        const id = await heldLock(`app/renew-${c}-${run}`);
        return { method: "PUT", path: `/v1/var/app/renew-${c}-${run}?lock-renew`, body: { Lock: { ID: id } } };
      },
    },
    {
      name: "PUT lock-release app/held-*",
      expect: only(200, ["write", "mgmt"]),
      request: async (c, run) => {
        const id = await heldLock(`app/release-${c}-${run}`);
        return { method: "PUT", path: `/v1/var/app/release-${c}-${run}?lock-release`, body: { Lock: { ID: id } } };
      },
    },
    // Permission comes before the conflict check: a stale CAS index is 409 only for those who may write.
    {
      name: "PUT var app/x?cas=1 (stale)",
      expect: only(409, ["write", "mgmt"]),
      request: async (c) => ({ method: "PUT", path: "/v1/var/app/x?cas=1", body: { Items: { by: c } } }),
    },
    { name: "GET acl/tokens", expect: only(200, ["mgmt"]), request: get("/v1/acl/tokens") },
    {
      name: "GET acl/token/<management>",
      expect: only(200, ["mgmt"]),
      request: async () => ({ method: "GET", path: `/v1/acl/token/${tokens.mgmt?.accessor}` }),
    },
    {
      name: "GET acl/token/<own or read's>",
      expect: only(200, ["read", "write", "mgmt"]),
      request: async (c) => ({ method: "GET", path: `/v1/acl/token/${(c === "write" ? tokens.write : tokens.read)?.accessor}` }),
    },
    {
      name: "GET acl/token/<other client's>",
      expect: only(200, ["mgmt"]),
      request: async (c) => ({ method: "GET", path: `/v1/acl/token/${(c === "read" ? tokens.write : tokens.read)?.accessor}` }),
    },
    { name: "GET acl/token/self", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/acl/token/self") },
    {
      name: "POST acl/token (create)",
      expect: only(200, ["mgmt"]),
      request: async (c, run) => ({ method: "POST", path: "/v1/acl/token", body: { Name: `made-by-${c}-${run}`, Type: "management" } }),
    },
    {
      name: "DELETE acl/token/<throwaway>",
      expect: only(200, ["mgmt"]),
      request: async (c, run) => {
        const t = await createToken(`doomed-${c}-${run}`, ["app-read"]);
        doomed.set(`${c}-${run}`, t);
        return { method: "DELETE", path: `/v1/acl/token/${t.accessor}` };
      },
      after: async (c, run, status) => {
        const t = doomed.get(`${c}-${run}`);
        const self = await send(pick(servers.filter((s) => s.running)), "GET", "/v1/acl/token/self", t?.secret);
        return (self.status === 200) === (status !== 200) ? undefined : `the throwaway token answers token/self with ${self.status}`;
      },
    },
    { name: "GET acl/policies", expect: only(200, ["read", "write", "mgmt"]), request: get("/v1/acl/policies") },
    { name: "GET acl/policy/app-read", expect: only(200, ["read", "mgmt"]), request: get("/v1/acl/policy/app-read") },
    { name: "GET acl/policy/app-write", expect: only(200, ["write", "mgmt"]), request: get("/v1/acl/policy/app-write") },
    {
      name: "PUT acl/policy (create)",
      expect: only(200, ["mgmt"]),
      request: async (c, run) => ({
        method: "PUT",
        path: `/v1/acl/policy/made-by-${c}-${run}`,
        body: { Rules: WRITE_RULES.replace("app/*", "*") },
      }),
    },
    {
      name: "PUT acl/policy/app-read (same rules)",
      expect: only(200, ["mgmt"]),
      // Management rewrites the same rules (a no-op for the permissions); everyone else must be refused.
      request: async () => ({ method: "PUT", path: "/v1/acl/policy/app-read", body: { Rules: READ_RULES } }),
    },
    {
      name: "DELETE acl/policy/<throwaway>",
      expect: only(200, ["mgmt"]),
      request: async (c, run) => {
        await mgmt("PUT", `/v1/acl/policy/doomed-${c}-${run}`, { Rules: READ_RULES });
        return { method: "DELETE", path: `/v1/acl/policy/doomed-${c}-${run}` };
      },
      after: async (c, run, status) => {
        const r = await send(pick(servers.filter((s) => s.running)), "GET", `/v1/acl/policy/doomed-${c}-${run}`, tokens.mgmt?.secret);
        return (r.status === 404) === (status === 200) ? undefined : `the throwaway policy reads as ${r.status}`;
      },
    },
    { name: "POST acl/bootstrap (again)", expect: all(400), request: async () => ({ method: "POST", path: "/v1/acl/bootstrap" }) },
  ];
}
const doomed = new Map<string, Token>();

/** Management acquires a lock on `path` (TTL 30 s) and returns its ID. */
async function heldLock(path: string): Promise<string> {
  const r = await mgmt("PUT", `/v1/var/${path}?lock-acquire`, { Items: { a: "1" }, Lock: { TTL: "30s", LockDelay: "1s" } });
  const id = (JSON.parse(new TextDecoder().decode(r.bytes)) as { Lock?: { ID?: string } }).Lock?.ID;
  if (!id) throw new Error(`no lock ID acquiring ${path}: ${r.text}`);
  return id;
}
/** A valid snapshot taken after the setup, for the dry-run row. */
let savedFile: Uint8Array = new Uint8Array();
/** Incompressible-looking filler for the large refused uploads. */
const GARBAGE = (() => {
  const b = new Uint8Array(2 * 1024 * 1024);
  for (let off = 0; off < b.length; off += 65_536) crypto.getRandomValues(b.subarray(off, off + 65_536));
  return b;
})();

/** Runs every row for every caller against random running servers; fails with the whole matrix printed. */
async function runMatrix(run: string, among: ClusterServer[]): Promise<void> {
  const grid: string[] = [];
  const misses: string[] = [];
  for (const row of rows()) {
    const cells: string[] = [];
    for (const c of CALLERS) {
      const want = row.expect[c];
      const req = await row.request(c, run);
      const s = pick(among);
      let got: Reply;
      try {
        got = await send(s, req.method, req.path, secretOf(c), req.body, req.raw);
      } catch (e) {
        got = { status: -1, text: (e as Error).message, bytes: new Uint8Array(), server: s.name };
      }
      let note = "";
      if (got.status === 403 && got.text !== "Permission denied") note = ` body ${JSON.stringify(got.text)}`;
      const afterErr = row.after ? await row.after(c, run, got.status) : undefined;
      const ok = got.status === want && !note && !afterErr;
      if (!ok) {
        misses.push(
          `  MISMATCH ${row.name} as ${c} via ${got.server}: want ${want}, got ${got.status} ${JSON.stringify(got.text.slice(0, 160))}${afterErr ? ` (${afterErr})` : ""}`,
        );
      }
      cells.push(`${ok ? " " : "✗"}${got.status}${ok ? "" : `≠${want}`}@${got.server}`.padEnd(13));
    }
    grid.push(`${row.name.padEnd(36)} ${cells.join(" ")}`);
  }
  if (misses.length > 0) {
    const header = `${"endpoint".padEnd(36)} ${CALLERS.map((c) => c.padEnd(13)).join(" ")}`;
    console.error(`ACL matrix (${run}, seed ${SEED}): ${misses.length} mismatches\n${header}\n${grid.join("\n")}\n${misses.join("\n")}`);
  }
  expect(misses).toEqual([]);
}

/** Runs a test body with the servers' logs and the seed (EDGENODE_SEED=… repeats the run) printed on failure. */
async function seeded(fn: () => Promise<void>): Promise<void> {
  await withLogs(cluster, async () => {
    try {
      await fn();
    } catch (e) {
      console.error(`acl matrix seed ${SEED} (rerun with EDGENODE_SEED=${SEED})`);
      throw e;
    }
  });
}

/** The six bootstraps raced in beforeAll: the test of bootstrap reads them; every test uses the token that won. */
let bootstrapRace: Reply[] = [];

const cluster = useCluster("aclmatrix", {
  start: async (c) => {
    await c.init();
    servers = startConfigured(c, allocPorts(3), () => "acl {\n  enabled = true\n}\n");
    await Promise.all(servers.map((s) => s.waitHttp(20_000)));
    await leaderAmong(servers, 20_000);
  },
});

beforeAll(async () => {
  // What every test starts from: the management token of a bootstrap (six at once on all three
  // servers), two policies, a read and a write token, two variables and a snapshot of that state.
  bootstrapRace = await Promise.all(
    Array.from({ length: 6 }, (_, i) => send(servers[i % 3] ?? servers[0]!, i % 2 ? "PUT" : "POST", "/v1/acl/bootstrap", undefined)),
  );
  const boot = bootstrapRace.find((r) => r.status === 200);
  if (!boot) throw new Error(`no bootstrap succeeded: ${bootstrapRace.map((r) => `${r.status} ${r.text}`).join("; ")}`);
  const t = JSON.parse(new TextDecoder().decode(boot.bytes)) as { AccessorID: string; SecretID: string };
  tokens.mgmt = { accessor: t.AccessorID, secret: t.SecretID };
  await mgmt("PUT", "/v1/acl/policy/app-read", { Rules: READ_RULES });
  await mgmt("PUT", "/v1/acl/policy/app-write", { Rules: WRITE_RULES });
  tokens.read = await createToken("reader", ["app-read"]);
  tokens.write = await createToken("writer", ["app-write"]);
  await mgmt("PUT", "/v1/var/app/x", { Items: { v: "1" } });
  await mgmt("PUT", "/v1/var/other/x", { Items: { v: "1" } });
  savedFile = (await mgmt("GET", "/v1/operator/snapshot")).bytes;
  // The matrix is about the rules: it starts once every server answers every token (a follower catches
  // up once before refusing a secret it does not know, acl_catch_up.ts; this wait is the check of it).
  for (const s of servers)
    for (const [who, t] of Object.entries(tokens))
      await waitFor(
        `${s.name} to know the ${who} token`,
        10_000,
        async () => (await send(s, "GET", "/v1/regions", t?.secret)).status === 200,
      );
}, 90_000);

test("bootstrap once: of six at once exactly one wins with a management token; every later one is refused", async () => {
  await seeded(async () => {
    expect(bootstrapRace.map((r) => r.status).sort()).toEqual([200, 400, 400, 400, 400, 400]);
    const boot = bootstrapRace.find((r) => r.status === 200)!;
    expect((JSON.parse(new TextDecoder().decode(boot.bytes)) as { Type: string }).Type).toBe("management");
    for (const s of servers) expect((await send(s, "POST", "/v1/acl/bootstrap", undefined)).status).toBe(400);
    expect((await send(pick(servers), "GET", "/v1/acl/token/self", tokens.read?.secret)).status).toBe(200);
  });
});

test("the matrix: every endpoint × five callers, on random servers", async () => {
  await seeded(() => runMatrix("initial", servers));
});

test("tokens survive a leader change (kill -9 of the leader)", async () => {
  await seeded(async () => {
    const old = await leaderAmong(servers);
    await old.kill();
    const rest = servers.filter((s) => s !== old);
    await leaderAmong(rest, 20_000);
    try {
      await runMatrix("after-failover", rest);
    } finally {
      // The old leader comes back (also when the matrix failed, so that later tests have three servers)...
      old.start();
      await old.waitHttp(20_000);
    }
    // ...and, once caught up, answers stale reads with the same tokens.
    await leaderAmong(servers, 20_000);
    await waitFor(
      "the restarted server to authorize a stale read",
      20_000,
      async () => (await send(old, "GET", "/v1/var/app/x?stale", tokens.read?.secret)).status === 200,
    );
    expect((await send(old, "PUT", "/v1/var/app/x?stale", tokens.read?.secret, { Items: { a: "b" } })).status).toBe(403);
  });
});

test("tokens survive a restore: deleted after the save comes back, created after the save is gone", async () => {
  await seeded(async () => {
    const saved = await send(pick(servers), "GET", "/v1/operator/snapshot", tokens.mgmt?.secret);
    expect(saved.status).toBe(200);
    const read = tokens.read;
    if (!read) throw new Error("no read token");

    await mgmt("DELETE", `/v1/acl/token/${read.accessor}`);
    for (const s of servers) expect((await send(s, "GET", "/v1/var/app/x", read.secret)).status).toBe(403);
    const late = await createToken("late", ["app-write"]);
    expect((await send(pick(servers), "PUT", "/v1/var/app/late", late.secret, { Items: { a: "1" } })).status).toBe(200);

    const restored = await send(pick(servers), "PUT", "/v1/operator/snapshot", tokens.mgmt?.secret, undefined, saved.bytes);
    expect([restored.status, restored.text]).toEqual([200, expect.stringContaining("Index")]);
    await expectLeaderServesRestored(servers[0]!, {
      present: "app/x",
      absent: "app/late",
      token: read.secret,
      index: (JSON.parse(restored.text) as { Index: number }).Index,
    });

    for (const s of servers) {
      // Every server decides from its own restored state (stale reads), and through the leader.
      await waitFor(
        `${s.name} to apply the restore`,
        20_000,
        async () => (await send(s, "GET", "/v1/var/app/x?stale", read.secret)).status === 200,
      );
      await waitFor(
        `${s.name} to forget the late token`,
        20_000,
        async () => (await send(s, "GET", "/v1/var/app/x?stale", late.secret)).status === 403,
      );
      expect((await send(s, "GET", "/v1/acl/token/self", read.secret)).status).toBe(200);
      expect((await send(s, "GET", "/v1/acl/token/self", late.secret)).status).toBe(403);
      expect((await send(s, "PUT", "/v1/var/app/late", late.secret, { Items: { a: "2" } })).status).toBe(403);
      expect((await send(s, "GET", "/v1/var/app/late", tokens.mgmt?.secret)).status).toBe(404);
    }
    await runMatrix("after-restore", servers);
  });
});

test("an empty X-Edgenode-Token falls back to Authorization: Bearer, for calls as for the agent's routes", async () => {
  await seeded(async () => {
    const headers = { "X-Edgenode-Token": "", Authorization: `Bearer ${tokens.mgmt?.secret}` };
    for (const s of servers) {
      for (const path of ["/v1/agent/self", "/v1/var/app/x", "/v1/acl/token/self", "/v1/operator/raft/configuration"]) {
        const r = await fetch(`${s.url}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
        expect([s.name, path, r.status]).toEqual([s.name, path, 200]);
      }
    }
  });
});

test("an over-long token is an unknown token (403) on every server, forwarded or not", async () => {
  await seeded(async () => {
    const long = "x".repeat(5000);
    const got: string[] = [];
    for (const s of servers) {
      for (const [method, path] of [
        ["GET", "/v1/var/app/x"],
        ["PUT", "/v1/operator/raft/transfer-leadership"],
        ["GET", "/v1/operator/snapshot"],
        ["GET", "/v1/acl/token/self"],
        ["GET", "/v1/agent/self"],
      ] as const) {
        for (const h of [{ "X-Edgenode-Token": long }, { Authorization: `Bearer ${long}` }] as Record<string, string>[]) {
          const r = await fetch(`${s.url}${path}`, { method, headers: h, signal: AbortSignal.timeout(10_000) });
          got.push(`${s.name} ${method} ${path} ${r.status} ${(await r.text()).slice(0, 80)}`);
        }
      }
    }
    expect(got.filter((g) => !/ 403 Permission denied$/.test(g))).toEqual([]);
  });
});

test("operator writes with real targets: only management moves leadership; no one else removes a peer", async () => {
  await seeded(async () => {
    const cfg = async () =>
      JSON.parse(new TextDecoder().decode((await mgmt("GET", "/v1/operator/raft/configuration")).bytes)) as {
        Servers: { ID: string; Leader: boolean; Voter: boolean }[];
      };
    const before = await cfg();
    const leaderId = before.Servers.find((s) => s.Leader)?.ID;
    const follower = before.Servers.find((s) => !s.Leader)?.ID;
    expect(leaderId && follower).toBeTruthy();
    for (const c of ["anon", "unknown", "read", "write"] as const) {
      expect([c, (await send(pick(servers), "DELETE", `/v1/operator/raft/peer?id=${follower}`, secretOf(c))).status]).toEqual([c, 403]);
      expect([c, (await send(pick(servers), "PUT", `/v1/operator/raft/transfer-leadership?id=${follower}`, secretOf(c))).status]).toEqual([
        c,
        403,
      ]);
      expect([c, (await send(pick(servers), "PUT", "/v1/operator/raft/transfer-leadership", secretOf(c))).status]).toEqual([c, 403]);
    }
    const after = await cfg();
    expect(after.Servers.map((s) => [s.ID, s.Voter]).sort()).toEqual(before.Servers.map((s) => [s.ID, s.Voter]).sort());
    expect(after.Servers.find((s) => s.Leader)?.ID).toBe(leaderId);

    const moved = await send(pick(servers), "PUT", `/v1/operator/raft/transfer-leadership?id=${follower}`, tokens.mgmt?.secret);
    expect([moved.status, moved.text]).toEqual([200, expect.stringContaining(follower ?? "?")]);
    await waitFor(
      "the new leader to be known everywhere",
      20_000,
      async () => (await cfg()).Servers.find((s) => s.Leader)?.ID === follower,
    );
    // The tokens keep their permissions under the new leader.
    expect((await send(pick(servers), "GET", "/v1/var/app/x", tokens.read?.secret)).status).toBe(200);
    expect((await send(pick(servers), "PUT", "/v1/var/app/x", tokens.read?.secret, { Items: { a: "1" } })).status).toBe(403);
    expect((await send(pick(servers), "PUT", "/v1/var/app/x", tokens.write?.secret, { Items: { a: "1" } })).status).toBe(200);
    expect((await send(pick(servers), "PUT", "/v1/var/other/x", tokens.write?.secret, { Items: { a: "1" } })).status).toBe(403);
  });
});

test("a restore the leader refuses before reading it is answered with the leader's reason through any server", async () => {
  await seeded(async () => {
    const leader = await leaderAmong(servers);
    const follower = servers.find((s) => s !== leader);
    if (!follower) throw new Error("no follower");
    // Restore A holds the leader's one restore slot: its upload stalls after the first bytes.
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const body = new ReadableStream<Uint8Array>({
      async start(ctl) {
        ctl.enqueue(savedFile.subarray(0, 1024));
        await gate;
        ctl.enqueue(savedFile.subarray(1024));
        ctl.close();
      },
    });
    const a = fetch(`${leader.url}/v1/operator/snapshot?dry-run`, {
      method: "PUT",
      body,
      headers: { "X-Edgenode-Token": tokens.mgmt?.secret ?? "" },
      signal: AbortSignal.timeout(30_000),
    });
    try {
      await waitFor(
        "restore A to hold the slot",
        10_000,
        async () => (await send(leader, "PUT", "/v1/operator/snapshot?dry-run", tokens.mgmt?.secret, undefined, savedFile)).status === 409,
      );
      for (const s of [follower, leader]) {
        const b = await send(s, "PUT", "/v1/operator/snapshot?dry-run", tokens.mgmt?.secret, undefined, GARBAGE);
        expect([s.name, b.status, b.text]).toEqual([s.name, 409, expect.stringContaining("another snapshot restore is in progress")]);
        const c = await send(s, "PUT", "/v1/operator/snapshot", tokens.read?.secret, undefined, GARBAGE);
        expect([s.name, c.status, c.text]).toEqual([s.name, 403, "Permission denied"]);
      }
    } finally {
      release();
    }
    const done = await a;
    expect([done.status, await done.text()]).toEqual([200, expect.stringContaining("Index")]);
  });
});
