// The client commands against a real dev agent run from source on free ports: var get/put/list/purge
// with CAS and pagination, var lock, operator raft, server members, status, snapshot save and restore
// round trip; plus -help, flag errors, exit codes and the environment variables.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/cli/cli.ts";
import { captureIo } from "./capture_io.ts";
import { startDevAgent, type DevAgent } from "./dev_agent.ts";

let agent: DevAgent;
const dir = mkdtempSync(join(tmpdir(), "edgenode-cli-cmd-"));

beforeAll(async () => {
  agent = await startDevAgent();
}, 30_000);
afterAll(async () => {
  await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string> = {}) {
  const io = captureIo({ EDGENODE_ADDR: agent.address, ...env });
  const code = await runCli(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("var against a dev agent", () => {
  test("put, get (table and -json), cas conflicts, purge", async () => {
    const put = await run(["var", "put", "app/db", "user=admin", "pass=x=y"]);
    expect(put.err).toBe("");
    expect(put.code).toBe(0);
    expect(put.out).toMatch(/^Wrote variable "app\/db" \(modify index \d+\)$/);

    const get = await run(["var", "get", "-json", "app/db"]);
    expect(get.code).toBe(0);
    const v = JSON.parse(get.out);
    expect(v.Items).toEqual({ user: "admin", pass: "x=y" });

    const table = await run(["var", "get", "app/db"]);
    expect(table.out).toMatch(/^Path\s+= app\/db$/m);
    expect(table.out).toMatch(/^pass = x=y$/m);

    const createOnly = await run(["var", "put", "-cas", "0", "app/db", "user=other"]);
    expect(createOnly.code).toBe(1);
    expect(createOnly.err).toStartWith("Error writing the variable: Unexpected response code: 409");
    expect(createOnly.out).toBe("");

    const stale = await run(["var", "put", "-cas", String(v.ModifyIndex + 100), "app/db", "user=other"]);
    expect(stale.code).toBe(1);
    const ok = await run(["var", "put", "-json", "-cas", String(v.ModifyIndex), "app/db", "user=other"]);
    expect(ok.code).toBe(0);
    const v2 = JSON.parse(ok.out);
    expect(v2.Items).toEqual({ user: "other" });

    expect((await run(["var", "purge", "-cas", String(v.ModifyIndex), "app/db"])).code).toBe(1);
    const purge = await run(["var", "purge", "-cas", String(v2.ModifyIndex), "app/db"]);
    expect(purge.code).toBe(0);
    expect(purge.out).toBe('Successfully purged variable "app/db"');

    const gone = await run(["var", "get", "app/db"]);
    expect(gone.code).toBe(1);
    expect(gone.err).toBe('Error reading the variable: variable "app/db" not found');
  });

  test("put reads values from a file", async () => {
    const f = join(dir, "cert.pem");
    await Bun.write(f, "line1\nline2\n");
    expect((await run(["var", "put", "files/cert", `pem=@${f}`])).code).toBe(0);
    const v = JSON.parse((await run(["var", "get", "-json", "files/cert"])).out);
    expect(v.Items.pem).toBe("line1\nline2\n");
    const missing = await run(["var", "put", "files/cert", `pem=@${join(dir, "nope")}`]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("no such file");
  });

  test("list paginates through every page, with a prefix", async () => {
    for (let i = 0; i < 7; i++) expect((await run(["var", "put", `list/k${i}`, `i=${i}`])).code).toBe(0);
    expect((await run(["var", "put", "other/z", "i=z"])).code).toBe(0);
    const r = await run(["var", "list", "-per-page", "2", "-json", "list/"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).map((v: { Path: string }) => v.Path)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `list/k${i}`));
    const t = await run(["var", "list", "list/"]);
    expect(t.out.split("\n")[0]).toMatch(/^Path\s+Modify Index\s+Modify Time\s+Locked$/);
    expect(t.out.split("\n")).toHaveLength(8);
    expect((await run(["var", "list", "nothing-here/"])).out).toBe("No variables found");
  });

  test("var lock holds the lock while CMD runs and releases it", async () => {
    const probe = join(dir, "lock-probe.json");
    // CMD reads the variable while it runs: the lock must be visible (without its ID) then.
    const main = join(import.meta.dir, "..", "..", "src", "main.ts");
    const r = await run([
      "var",
      "lock",
      "-ttl",
      "2s",
      "locks/job",
      "--",
      "sh",
      "-c",
      `EDGENODE_ADDR=${agent.address} "${process.execPath}" "${main}" var get -json locks/job > ${probe}; exit 3`,
    ]);
    expect(r.err).toBe("");
    expect(r.code).toBe(3);
    const during = JSON.parse(await Bun.file(probe).text());
    expect(during.Lock).toBeDefined();
    expect(during.Lock.ID).toBeUndefined();
    const after = JSON.parse((await run(["var", "get", "-json", "locks/job"])).out);
    expect(after.Lock).toBeUndefined();
  }, 20_000);

  test("bad paths and items are refused before any request", async () => {
    for (const p of ["/lead", "trail/", "dou//ble", "sp ace", "x".repeat(129)]) {
      const r = await run(["var", "get", p]);
      expect(r.code).toBe(1);
      expect(r.err).toContain("invalid variable path");
    }
    const noItems = await run(["var", "put", "a/b"]);
    expect(noItems.err).toContain("give at least one key=value item");
    const badItem = await run(["var", "put", "a/b", "novalue"]);
    expect(badItem.err).toContain('invalid item "novalue"');
    const dup = await run(["var", "put", "a/b", "k=1", "k=2"]);
    expect(dup.err).toContain('item "k" given twice');
  });
});

describe("operator raft, server members, status against a dev agent", () => {
  test("list-peers shows the one leader", async () => {
    const r = await run(["operator", "raft", "list-peers"]);
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines[0]).toMatch(/^Node\s+ID\s+Address\s+State\s+Voter$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/\s127\.0\.0\.1:\d+\s+leader\s+true$/);
  });

  test("raft stats shows the cluster id and the one server's indexes and lag", async () => {
    const r = await run(["operator", "raft", "stats"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines[0]).toMatch(/^Cluster ID: [0-9a-f-]{36}$/);
    expect(lines[1]).toMatch(/^Leader: \S+$/);
    expect(lines[3]).toMatch(/^Node\s+ID\s+Address\s+State\s+Term\s+LastIndex\s+CommitIndex\s+AppliedIndex\s+Lag\s+Error$/);
    expect(lines).toHaveLength(5);
    const m = /\s127\.0\.0\.1:\d+\s+leader\s+[1-9]\d*\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(lines[4] ?? "");
    if (!m) throw new Error(`no stats row in ${JSON.stringify(r.out)}`);
    const [last, commit, applied, lag] = m.slice(1).map(Number) as [number, number, number, number];
    expect(commit).toBeGreaterThan(0);
    expect(last).toBeGreaterThanOrEqual(commit);
    // One server: the leader's commit and its applied index are read together, so the lag is their difference.
    expect(lag).toBe(commit - applied);
    const stale = await run(["operator", "raft", "stats", "-stale"]);
    expect(stale.code).toBe(0);
    expect(stale.out.split("\n")[0]).toBe(lines[0]);
  });

  test("server members and status", async () => {
    const m = await run(["server", "members"]);
    expect(m.code).toBe(0);
    expect(m.out.split("\n")[0]).toMatch(/^Name\s+ID\s+Address\s+Status\s+Leader\s+Build\s+Region$/);
    expect(m.out.split("\n")[1]).toMatch(/voter\s+true\s+0\.2\.0(-dev)?\s+global$/);
    const s = await run(["status"]);
    expect(s.code).toBe(0);
    expect(s.out).toMatch(/^Region\s+= global$/m);
    expect(s.out).toMatch(/^Leader\s+= \S+ \(127\.0\.0\.1:\d+\)$/m);
    expect(s.out).toMatch(/^Commit Index\s+= [1-9]\d*$/m);
  });

  test("remove-peer needs -peer-id; an unknown peer is the server's error", async () => {
    const r = await run(["operator", "raft", "remove-peer"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("Error removing the peer: -peer-id is required");
    const u = await run(["operator", "raft", "remove-peer", "-peer-id", "nope"]);
    expect(u.code).toBe(1);
    expect(u.err).toStartWith("Error removing the peer: Unexpected response code: 404");
  });

  test("transfer-leadership with no other voter fails with exit 1", async () => {
    const r = await run(["operator", "raft", "transfer-leadership"]);
    expect(r.code).toBe(1);
    expect(r.err).toStartWith("Error transferring leadership: ");
    expect(r.out).toBe("");
  });

  test("an unknown region is the server's 400", async () => {
    const r = await run(["var", "list"], { EDGENODE_REGION: "mars" });
    expect(r.code).toBe(1);
    expect(r.err).toContain("unknown region");
  });
});

describe("snapshot save and restore against a dev agent", () => {
  test("save, change, restore: the change is gone", async () => {
    expect((await run(["var", "put", "snap/a", "v=before"])).code).toBe(0);
    const file = join(dir, "real.snap");
    const s = await run(["operator", "snapshot", "save", file]);
    expect(s.err).toBe("");
    expect(s.code).toBe(0);
    expect(s.out).toMatch(new RegExp(`^State file written to ${file.replaceAll("/", "\\/")} \\(index \\d+\\)$`));
    expect((await run(["operator", "snapshot", "inspect", file])).out).toMatch(/^vars\s+[1-9]\d*$/m);

    expect((await run(["var", "put", "snap/a", "v=after"])).code).toBe(0);
    const dry = await run(["operator", "snapshot", "restore", "-dry-run", file]);
    expect(dry.code).toBe(0);
    expect(JSON.parse((await run(["var", "get", "-json", "snap/a"])).out).Items.v).toBe("after");

    const r = await run(["operator", "snapshot", "restore", file]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Snapshot restored \(index \d+\)$/);
    expect(JSON.parse((await run(["var", "get", "-json", "snap/a"])).out).Items.v).toBe("before");
  }, 30_000);
});

describe("help, flags, exit codes, environment", () => {
  test("every client command has -help listing the global client flags and their env vars", async () => {
    const cmds = [
      ["var", "get"],
      ["var", "put"],
      ["var", "list"],
      ["var", "purge"],
      ["var", "lock"],
      ["operator", "raft", "list-peers"],
      ["operator", "raft", "remove-peer"],
      ["operator", "raft", "transfer-leadership"],
      ["operator", "snapshot", "save"],
      ["operator", "snapshot", "restore"],
      ["server", "members"],
      ["status"],
    ];
    for (const c of cmds) {
      const r = await run([...c, "-help"]);
      expect(r.code).toBe(0);
      expect(r.out).toStartWith(`Usage: node ${c.join(" ")}`);
      for (const [flag, env] of [
        ["address", "EDGENODE_ADDR"],
        ["token", "EDGENODE_TOKEN"],
        ["region", "EDGENODE_REGION"],
        ["ca-cert", "EDGENODE_CACERT"],
        ["client-cert", "EDGENODE_CLIENT_CERT"],
        ["client-key", "EDGENODE_CLIENT_KEY"],
        ["tls-skip-verify", "EDGENODE_SKIP_VERIFY"],
      ]) {
        expect(r.out).toContain(`-${flag}`);
        expect(r.out).toContain(`(env ${env})`);
      }
    }
    const inspect = await run(["operator", "snapshot", "inspect", "--help"]);
    expect(inspect.code).toBe(0);
    expect(inspect.out).not.toContain("-address");
  });

  test("unknown flags and bad values: exit 1 with usage on stderr", async () => {
    const r = await run(["var", "get", "-bogus", "x"]);
    expect(r.code).toBe(1);
    expect(r.err).toStartWith("Error parsing flags: flag provided but not defined: -bogus");
    expect(r.out).toBe("");
    const cas = await run(["var", "put", "-cas", "abc", "a", "k=v"]);
    expect(cas.code).toBe(1);
    expect(cas.err).toContain('invalid integer value "abc" for -cas');
    const half = await run(["var", "list", "-client-cert", "/x.pem"]);
    expect(half.err).toContain("-client-cert and -client-key must be given together");
    const ca = await run(["var", "list", "-ca-cert", join(dir, "missing.pem")]);
    expect(ca.err).toContain("Error reading -ca-cert: no such file");
    const addr = await run(["var", "list", "-address", "ftp://x"]);
    expect(addr.err).toContain("scheme must be http or https");
  });

  test("-address beats EDGENODE_ADDR; the env var is used without the flag", async () => {
    const viaFlag = await run(["status", "-address", agent.address], { EDGENODE_ADDR: "http://127.0.0.1:1" });
    expect(viaFlag.code).toBe(0);
    const viaEnv = await run(["status"], { EDGENODE_ADDR: "http://127.0.0.1:1" });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.err).toContain("cannot reach the agent at http://127.0.0.1:1");
  });

  test("EDGENODE_TOKEN and EDGENODE_REGION reach the server", async () => {
    const seen: { token: string | null; region: string | null }[] = [];
    const fake = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        seen.push({ token: req.headers.get("x-edgenode-token"), region: new URL(req.url).searchParams.get("region") });
        return Response.json([]);
      },
    });
    try {
      const r = await run(["var", "list"], {
        EDGENODE_ADDR: `http://127.0.0.1:${fake.port}`,
        EDGENODE_TOKEN: "tok",
        EDGENODE_REGION: "west",
      });
      expect(r.code).toBe(0);
      expect(seen).toEqual([{ token: "tok", region: "west" }]);
      const f = await run(["var", "list", "-token", "flagtok", "-region", "east"], {
        EDGENODE_ADDR: `http://127.0.0.1:${fake.port}`,
        EDGENODE_TOKEN: "tok",
      });
      expect(f.code).toBe(0);
      expect(seen[1]).toEqual({ token: "flagtok", region: "east" });
    } finally {
      fake.stop(true);
    }
  });
});
