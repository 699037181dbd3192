// ACLs in a three-server cluster (in-process): calls made on a follower are forwarded with their
// token and the leader decides; stale reads are decided by the follower from its own state.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../support/wait.ts";
import { freePort, startAgent, type Agent } from "./harness.ts";

// Each test makes many raft writes; on a loaded 2-core box the default 5 s is too tight.
setDefaultTimeout(30_000);

let agents: Agent[] = [];

beforeAll(async () => {
  const rpcs = [freePort(), freePort(), freePort()];
  const join = rpcs.map((p) => `"127.0.0.1:${p}"`).join(", ");
  const extraHcl = `server {\n  bootstrap_expect = 3\n  server_join { retry_join = [${join}] }\n}\n`;
  agents = await Promise.all(rpcs.map((rpc) => startAgent(true, { rpc, extraHcl, waitLeader: false })));
  await waitFor(() => agents.every((a) => a.server.health().ok), 20_000, "all three servers to see a leader");
}, 40_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
});

test("a follower forwards with the token; the leader decides", async () => {
  const follower = agents.find((a) => !a.server.driver?.isLeader)!;
  const boot = await follower.req("POST", "/v1/acl/bootstrap");
  expect(boot.status).toBe(200);
  const mgmt = boot.json().SecretID as string;
  expect((await follower.req("POST", "/v1/acl/bootstrap")).status).toBe(400);

  expect((await follower.req("PUT", "/v1/var/app/x", { body: { Items: { a: "1" } } })).status).toBe(403);
  expect((await follower.req("PUT", "/v1/var/app/x", { token: mgmt, body: { Items: { a: "1" } } })).status).toBe(200);
  expect(
    (
      await follower.req("PUT", "/v1/acl/policy/app", {
        token: mgmt,
        body: { Rules: 'variables { path "app/*" { capabilities = ["read"] } }' },
      })
    ).status,
  ).toBe(200);
  const client = (await follower.req("PUT", "/v1/acl/token", { token: mgmt, body: { Name: "c", Policies: ["app"] } })).json()
    .SecretID as string;

  expect((await follower.req("GET", "/v1/var/app/x", { token: client })).status).toBe(200);
  expect((await follower.req("PUT", "/v1/var/app/x", { token: client, body: { Items: { a: "2" } } })).status).toBe(403);
  expect((await follower.req("GET", "/v1/operator/raft/configuration", { token: client })).status).toBe(403);
  expect((await follower.req("GET", "/v1/operator/raft/configuration", { token: mgmt })).json().Servers).toHaveLength(3);

  // Every server replicates the tokens: a stale read is authorized by whichever server answers.
  for (const a of agents) {
    await waitFor(
      () => a.server.state.policy("app") !== undefined && a.acl.resolve(client) !== undefined,
      10_000,
      "the ACL tables to replicate",
    );
    expect((await a.req("GET", "/v1/var/app/x?stale", { token: client })).status).toBe(200);
    expect((await a.req("GET", "/v1/var/other?stale", { token: client })).status).toBe(403);
    expect((await a.req("GET", "/v1/agent/self", { token: mgmt })).status).toBe(200);
  }
}, 40_000);
