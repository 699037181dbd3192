// The acl CLI commands, run in-process against a real in-process server with ACLs on.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/cli/cli.ts";
import type { Io } from "../../src/cli/command.ts";
import { startAgent, type Agent } from "./harness.ts";

// Each test makes many raft writes; on a loaded 2-core box the default 5 s is too tight.
setDefaultTimeout(30_000);

let a: Agent;
let dir = "";
beforeAll(async () => {
  a = await startAgent(true);
  dir = await mkdtemp(join(tmpdir(), "edgenode-acl-cli-"));
}, 30_000);
afterAll(async () => {
  await a?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[], token?: string): Promise<{ code: number; out: string; err: string }> {
  const outs: string[] = [];
  const errs: string[] = [];
  const io: Io = {
    out: (s) => outs.push(s),
    err: (s) => errs.push(s),
    errIsTTY: false,
    env: { EDGENODE_ADDR: a.url, ...(token ? { EDGENODE_TOKEN: token } : {}) },
  };
  const code = await runCli(argv, io);
  return { code, out: outs.join("\n"), err: errs.join("\n") };
}

const field = (text: string, name: string) => new RegExp(`^${name}\\s+= (.*)$`, "m").exec(text)?.[1];

test("bootstrap, policies and tokens through the CLI", async () => {
  const denied = await run(["acl", "token", "list"]);
  expect(denied.code).toBe(1);
  expect(denied.err).toBe("Error listing tokens: Unexpected response code: 403 (Permission denied)");

  const boot = await run(["acl", "bootstrap"]);
  expect(boot.code).toBe(0);
  const secret = field(boot.out, "Secret ID")!;
  expect(secret).toMatch(/^[0-9a-f-]{36}$/);
  expect(field(boot.out, "Type")).toBe("management");
  const again = await run(["acl", "bootstrap"]);
  expect(again.code).toBe(1);
  expect(again.err).toContain("Error bootstrapping ACLs: Unexpected response code: 400 (ACL bootstrap already done)");

  const rulesFile = join(dir, "app.hcl");
  await writeFile(rulesFile, 'variables {\n  path "app/*" { capabilities = ["read", "list"] }\n}\n');
  const apply = await run(["acl", "policy", "apply", "-description", "app readers", "app-read", rulesFile], secret);
  expect([apply.code, apply.out, apply.err]).toEqual([0, 'Successfully wrote "app-read" ACL policy!', ""]);
  const badFile = join(dir, "bad.hcl");
  await writeFile(badFile, "variables {\n  nope = 1\n}\n");
  const bad = await run(["acl", "policy", "apply", "bad", badFile], secret);
  expect(bad.code).toBe(1);
  expect(bad.err).toBe(
    'Error writing the policy: Unexpected response code: 400 (invalid policy rules: 2:3: unknown key "nope" in variables; expected path "PATTERN" { capabilities = [...] })',
  );
  expect((await run(["acl", "policy", "apply", "x", join(dir, "missing.hcl")], secret)).err).toContain("no such file");

  const list = await run(["acl", "policy", "list"], secret);
  expect(list.out).toBe("Name      Description\napp-read  app readers");
  const info = await run(["acl", "policy", "info", "app-read"], secret);
  expect(info.out).toContain("Description  = app readers");
  expect(info.out).toContain('path "app/*"');

  const created = await run(["acl", "token", "create", "-name", "reader", "-policy", "app-read"], secret);
  expect(created.code).toBe(0);
  const clientSecret = field(created.out, "Secret ID")!;
  const accessor = field(created.out, "Accessor ID")!;
  expect(clientSecret).toMatch(/^[0-9a-f-]{36}$/);
  expect(field(created.out, "Policies")).toBe("app-read");

  const shown = await run(["acl", "token", "info", accessor], secret);
  expect(field(shown.out, "Secret ID")).toBe("<hidden>");
  expect(shown.out).not.toContain(clientSecret);
  const self = await run(["acl", "token", "self"], clientSecret);
  expect(field(self.out, "Accessor ID")).toBe(accessor);
  const tokens = await run(["acl", "token", "list"], secret);
  expect(tokens.out).toContain(accessor);
  expect(tokens.out).not.toContain(clientSecret);
  expect(tokens.out).not.toContain(secret);

  // The client token cannot manage ACLs.
  expect((await run(["acl", "token", "list"], clientSecret)).code).toBe(1);
  expect((await run(["acl", "token", "create", "-type", "management"], clientSecret)).err).toContain("403");

  expect((await run(["acl", "token", "delete", accessor], secret)).out).toBe(`Token ${accessor} successfully deleted`);
  expect((await run(["acl", "token", "self"], clientSecret)).code).toBe(1);
  expect((await run(["acl", "policy", "delete", "app-read"], secret)).out).toBe('Successfully deleted "app-read" ACL policy!');
  expect((await run(["acl", "policy", "list"], secret)).out).toBe("No policies found");

  // Argument checks happen before any request.
  expect((await run(["acl", "token", "info"], secret)).err).toBe(
    "Error reading the token: expected exactly one argument, ACCESSOR_ID (got 0)",
  );
  expect((await run(["acl", "token", "create", "-type", "root"], secret)).err).toContain('-type must be "client" or "management"');
}, 30_000);
