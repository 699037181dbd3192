// The status pages served by a real 3-server cluster of the compiled binary, fetched as HTML: the
// servers and the leader, a new leader after SIGKILL of the old, a written variable, and with ACLs
// on, the token form alone without a token and only its prefix for a read-only token.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";
import { callWithToken, startAclServers } from "./configured.ts";

async function page(s: ClusterServer, path: string, cookie?: string): Promise<{ status: number; html: string }> {
  const r = await fetch(`${s.url}${path}`, { headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(5_000) });
  return { status: r.status, html: await r.text() };
}

/** The leader the cluster page names: the server's Node name in the "Leader" field. */
const leaderOnPage = (html: string) => /id="leader"[^>]*>([^<(]+) \(/.exec(html)?.[1]?.trim();
const serverRows = (html: string) => [...html.matchAll(/data-server="([^"]+)"/g)].map((m) => m[1]);

describe("ui on a cluster", () => {
  const cluster = useCluster("ui");

  test(
    "the cluster page shows three servers and the leader; after SIGKILL of the leader, the new one",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        for (const s of cluster.servers) {
          const p = await page(s, "/ui/");
          expect(p.status).toBe(200);
          expect(serverRows(p.html).sort()).toEqual(["s1", "s2", "s3"]);
          expect(leaderOnPage(p.html)).toBe(leader.name);
        }
        await leader.kill();
        const killedAt = performance.now();
        const survivor = cluster.followers(leader)[0];
        if (!survivor) throw new Error("no survivor");
        const shown = await waitFor(
          "the page of a survivor naming a new leader",
          10_000,
          async () => {
            const name = leaderOnPage((await page(survivor, "/ui/cluster")).html);
            return name && name !== leader.name ? name : undefined;
          },
          100,
        );
        const newLeader = await cluster.waitForLeader(15_000);
        expect(shown).toBe(newLeader.name);
        expect(performance.now() - killedAt).toBeLessThan(10_000);
        // The killed server stays in the configuration, shown unhealthy: the page is red.
        await waitFor("the page red for the dead server", 10_000, async () => {
          const html = (await page(survivor, "/ui/")).html;
          return html.includes('class="banner bad"') && html.includes(`Unhealthy: ${leader.name}`) ? true : undefined;
        });
      }),
    60_000,
  );

  test(
    "the agent logs the page's address at start and node status prints it",
    () =>
      withLogs(cluster, async () => {
        const s = cluster.running()[0];
        if (!s) throw new Error("no server");
        const ui = `${s.url}/ui/`;
        // The whole boot's log: the line comes right after "started", however much follows it.
        expect(readFileSync(s.logFiles.at(-1) ?? "", "utf8")).toContain(`status page: ui=${ui}`);
        const p = Bun.spawnSync([cluster.binaryPath, "status", "-address", s.url], { stdout: "pipe", stderr: "pipe" });
        expect(p.exitCode).toBe(0);
        expect(p.stdout.toString()).toMatch(new RegExp(`^Status Page\\s+= ${ui.replaceAll(".", "\\.")}$`, "m"));
        expect((await page(s, "/ui/")).status).toBe(200);
      }),
    30_000,
  );

  test(
    "a written variable appears on the variables pages",
    () =>
      withLogs(cluster, async () => {
        const s = cluster.running()[0];
        if (!s) throw new Error("no server");
        await s.putVar("ui/site/door", { state: "open<&>" });
        const list = await page(s, "/ui/vars?prefix=ui/");
        expect(list.status).toBe(200);
        expect(list.html).toContain('href="/ui/var/ui/site/door"');
        const one = await page(s, "/ui/var/ui/site/door");
        expect(one.status).toBe(200);
        expect(one.html).toContain("open&lt;&amp;&gt;");
      }),
    30_000,
  );

  // Last in this block: it leaves one server of three.
  test(
    "with quorum lost the survivor's page is red, names no leader and still lists the servers",
    () =>
      withLogs(cluster, async () => {
        const [victim, survivor] = cluster.running();
        if (!victim || !survivor) throw new Error("need two running servers");
        await victim.kill();
        const html = await waitFor(
          "the survivor's page saying there is no leader",
          15_000,
          async () => {
            const p = await page(survivor, "/ui/");
            return p.status === 200 && p.html.includes("No leader") ? p.html : undefined;
          },
          100,
        );
        expect(html).toContain('class="banner bad"');
        expect(html).toMatch(/id="leader" class="bad">none</);
        expect(serverRows(html).sort()).toEqual(["s1", "s2", "s3"]);
        expect(html).toContain('http-equiv="refresh"');
      }),
    30_000,
  );
});

const READ_RULES = `variables {\n  path "app/*" { capabilities = ["read", "list"] }\n}\n`;

describe("ui with ACLs on", () => {
  let servers: ClusterServer[] = [];
  let mgmt = "";
  const as = (s: ClusterServer, method: string, path: string, body?: unknown) => callWithToken(mgmt, s, method, path, body);
  const cluster = useCluster("uiacl", {
    start: async (c) => {
      ({ servers, mgmt } = await startAclServers(c));
    },
  });

  test(
    "no token: only the token form, no server name, ID or address",
    () =>
      withLogs(cluster, async () => {
        const s0 = servers[0];
        if (!s0) throw new Error("no server");
        const config = JSON.parse((await as(s0, "GET", "/v1/operator/raft/configuration")).text) as {
          Servers: { ID: string; Node: string; Address: string }[];
        };
        expect(config.Servers.length).toBe(3);
        for (const s of servers) {
          for (const path of ["/ui/", "/ui/cluster", "/ui/vars?prefix=", "/ui/var/app/x"]) {
            const p = await page(s, path);
            expect(p.status).toBe(403);
            expect(p.html).toContain('action="/ui/token"');
            for (const c of config.Servers) {
              expect(p.html).not.toContain(c.ID);
              expect(p.html).not.toContain(c.Address);
              expect(p.html).not.toMatch(new RegExp(`\\b${c.Node}\\b`));
            }
          }
        }
        // The management token through the form: the page then shows the servers.
        const post = await fetch(`${s0.url}/ui/token`, { method: "POST", body: new URLSearchParams({ token: mgmt }), redirect: "manual" });
        expect(post.status).toBe(303);
        const cookie = (post.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
        expect(cookie).toStartWith("edgenode_ui_token=");
        const p = await page(s0, "/ui/", cookie);
        expect(p.status).toBe(200);
        expect(serverRows(p.html).sort()).toEqual(["s1", "s2", "s3"]);
      }),
    60_000,
  );

  test(
    "a read-only token for a prefix sees that prefix only",
    () =>
      withLogs(cluster, async () => {
        const s0 = servers[0];
        const s1 = servers[1];
        if (!s0 || !s1) throw new Error("no server");
        await as(s0, "PUT", "/v1/acl/policy/app-read", { Rules: READ_RULES });
        const tok = JSON.parse(
          (await as(s0, "POST", "/v1/acl/token", { Name: "reader", Type: "client", Policies: ["app-read"] })).text,
        ) as {
          SecretID: string;
        };
        await as(s0, "PUT", "/v1/var/app/visible", { Items: { v: "seen" } });
        await as(s0, "PUT", "/v1/var/secret/hidden", { Items: { v: "never-shown" } });
        const cookie = `edgenode_ui_token=${tok.SecretID}`;
        const list = await page(s1, "/ui/vars?prefix=app/", cookie);
        expect(list.status).toBe(200);
        expect(list.html).toContain("app/visible");
        expect(list.html).not.toContain("secret/hidden");
        const one = await page(s1, "/ui/var/app/visible", cookie);
        expect(one.status).toBe(200);
        expect(one.html).toContain("seen");
        for (const path of ["/ui/vars?prefix=", "/ui/vars?prefix=secret/", "/ui/var/secret/hidden", "/ui/"]) {
          const p = await page(s1, path, cookie);
          expect(p.status).toBe(403);
          expect(p.html).toContain("This token may not read this page");
          expect(p.html).not.toContain("never-shown");
          // The form's "back" field echoes the URL asked for; nothing else may name the variable.
          expect(p.html.replace(/name="back" value="[^"]*"/, "")).not.toContain("secret/hidden");
          expect(p.html).not.toContain('data-server="');
        }
      }),
    60_000,
  );
});
