// GET /v1/operator/snapshot/history and its page need what reading the raft configuration needs
// (operator:read): a token with only variable rights, or none, is refused; an operator-read token reads it.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startAgent, type Agent } from "./harness.ts";

setDefaultTimeout(30_000);

let a: Agent;
let mgmt = "";

beforeAll(async () => {
  a = await startAgent(true);
  mgmt = (await a.req("POST", "/v1/acl/bootstrap")).json().SecretID;
}, 30_000);

afterAll(async () => {
  await a?.stop();
});

async function tokenWith(name: string, rules: string): Promise<string> {
  expect((await a.req("PUT", `/v1/acl/policy/${name}`, { token: mgmt, body: { Rules: rules } })).status).toBe(200);
  const r = await a.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: name, Type: "client", Policies: [name] } });
  expect(r.status).toBe(200);
  return r.json().SecretID as string;
}

test("the snapshot history needs operator read, as the raft configuration does", async () => {
  const reader = await tokenWith("op-read", 'operator { policy = "read" }');
  const vars = await tokenWith("vars-only", 'variables { path "*" { capabilities = ["read", "list"] } }');
  const ok = await a.req("GET", "/v1/operator/snapshot/history", { token: reader });
  expect(ok.status).toBe(200);
  expect(ok.json().Servers.length).toBe(1);
  expect(ok.json().Servers[0]).toMatchObject({ Ops: [], Scheduled: [] });
  for (const token of [vars, undefined]) {
    const r = await a.req("GET", "/v1/operator/snapshot/history", token ? { token } : {});
    expect(r.status).toBe(403);
    expect(r.text).not.toContain("Servers");
  }
  expect((await a.req("GET", "/v1/operator/raft/configuration", { token: vars })).status).toBe(403);
});
