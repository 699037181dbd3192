// The status pages in a real browser (headless chromium, test/browser/browser.ts) against 3-server
// clusters of the compiled binary: the servers and the leader, a new leader shown by the page's own
// refresh after SIGKILL of the old, a written variable, the ACL token form with JavaScript on and off,
// and axe-core's accessibility check of each page. Written against the pages' hooks (the data-server
// rows, id="leader", the form's label and button), not their exact HTML.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ok, waitFor, withLogs, type ClusterServer, useCluster } from "../cluster/harness.ts";
import { callWithToken, startAclServers } from "../cluster/configured.ts";
import { accessibilityViolations, type Browser, launchBrowser, newContext, type Page, screenshot, visibleText } from "./browser.ts";

/** The Node name the page's "Leader" field shows ("s2 (127.0.0.1:port)"), or "none". */
async function leaderShown(page: Page, timeoutMs = 2_000): Promise<string> {
  const text = (await page.locator("#leader").textContent({ timeout: timeoutMs })) ?? "";
  return text.split(" (")[0]?.trim() ?? "";
}

async function serverRows(page: Page): Promise<string[]> {
  const rows = await page.locator("[data-server]").evaluateAll((els) => els.map((e) => e.getAttribute("data-server") ?? ""));
  return rows.sort();
}

/**
 * Each server row's Commit index and Applied index cells, by server name, found by the columns' headers
 * (not their position).
 */
async function indexCells(page: Page): Promise<Record<string, { commit: string; applied: string }>> {
  const heads = (await page.locator("thead th").allInnerTexts()).map((t) => t.trim());
  const commit = heads.indexOf("Commit index");
  const applied = heads.indexOf("Applied index");
  expect(commit).toBeGreaterThanOrEqual(0);
  expect(applied).toBeGreaterThanOrEqual(0);
  const out: Record<string, { commit: string; applied: string }> = {};
  for (const row of await page.locator("tr[data-server]").all()) {
    const cells = (await row.locator("td").allInnerTexts()).map((t) => t.trim());
    out[(await row.getAttribute("data-server")) ?? ""] = { commit: cells[commit] ?? "", applied: cells[applied] ?? "" };
  }
  return out;
}

/** The page's banner text when it is red, else undefined (also while a JavaScript-off page reloads). */
async function redBanner(page: Page): Promise<string | undefined> {
  const bad = page.locator("main p.banner.bad");
  return (await bad.count()) > 0
    ? ((await bad
        .first()
        .textContent({ timeout: 1_000 })
        .catch(() => null)) ?? undefined)
    : undefined;
}

/** Opens `path` on `s` and returns the response's status. */
async function open(page: Page, s: ClusterServer, path: string): Promise<number> {
  const r = await page.goto(`${s.url}${path}`);
  if (!r) throw new Error(`no response for ${path}`);
  return r.status();
}

/**
 * With JavaScript on a direct load carries no token (it is in sessionStorage, not a cookie): the server
 * answers the token form and the script fetches the page again with the stored token at once. Loads
 * `path` and waits for the page titled `h1`, never the token form.
 */
async function openSignedIn(page: Page, s: ClusterServer, path: string, h1: string): Promise<void> {
  await page.goto(`${s.url}${path}`);
  await page.locator("main h1", { hasText: h1 }).waitFor({ timeout: 10_000 });
  expect(await page.getByLabel("Token secret ID").count()).toBe(0);
}

const JS = [
  { javaScript: false, label: "off" },
  { javaScript: true, label: "on" },
];

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe("the status pages in a browser", () => {
  const cluster = useCluster("uibrowser");

  test(
    "every server's cluster page shows the three servers and the leader, with JavaScript on and off",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        for (const js of JS) {
          const ctx = await newContext(browser, js);
          const page = await ctx.newPage();
          for (const s of cluster.servers) {
            expect(await open(page, s, "/ui/")).toBe(200);
            expect(await serverRows(page)).toEqual(["s1", "s2", "s3"]);
            expect(await leaderShown(page)).toBe(leader.name);
          }
          await screenshot(page, `cluster-js-${js.label}`, "cluster");
          await ctx.close();
        }
      }),
    60_000,
  );

  test(
    "a variable written through the API is listed on /ui/vars and opens on /ui/var/<path> with its items",
    () =>
      withLogs(cluster, async () => {
        const [s0, s1] = cluster.running();
        if (!s0 || !s1) throw new Error("need two servers");
        await s0.putVar("site/door", { state: "open<&>", floor: "2" });
        const ctx = await newContext(browser, { javaScript: false });
        const page = await ctx.newPage();
        // Through the page's own form, on another server than the one written to.
        expect(await open(page, s1, "/ui/vars")).toBe(200);
        await page.getByLabel("Path prefix").fill("site/");
        await page.getByRole("button", { name: "List" }).click();
        await page.waitForURL(/\/ui\/vars\?prefix=site%2F$/);
        await screenshot(page, "vars", "vars");
        await page.getByRole("link", { name: "site/door" }).click();
        await page.waitForURL(/\/ui\/var\/site\/door$/);
        await screenshot(page, "vars", "var");
        const rows = await page.locator("tbody tr").all();
        const items = await Promise.all(rows.map(async (r) => (await r.locator("td").allInnerTexts()).map((t) => t.trim())));
        expect(items.sort()).toEqual([
          ["floor", "2"],
          ["state", "open<&>"],
        ]);
        await ctx.close();
      }),
    30_000,
  );

  test(
    "the cluster page shows the cluster id and each server's commit and applied index; a SIGSTOPped follower turns it red by name by its own refresh, JavaScript on and off",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const stopped = cluster.followers(leader)[0];
        if (!stopped) throw new Error("no follower");
        await leader.putVar("ui/indexes", { v: "1" });
        const stats = ok(await leader.http<{ ClusterID: string }>("GET", "/v1/operator/raft/stats"), "raft stats").body;
        expect(stats.ClusterID).toMatch(/^[0-9a-f-]{36}$/);
        const pages: { label: string; page: Page }[] = [];
        for (const js of JS) {
          const page = await (await newContext(browser, js)).newPage();
          expect(await open(page, leader, "/ui/cluster")).toBe(200);
          expect(((await page.locator("#cluster-id").textContent()) ?? "").trim()).toBe(stats.ClusterID);
          const cells = await indexCells(page);
          expect(Object.keys(cells).sort()).toEqual(["s1", "s2", "s3"]);
          for (const c of Object.values(cells)) {
            expect(c.commit).toMatch(/^\d+$/);
            expect(c.applied).toMatch(/^\d+$/);
            // The variable written above is committed and applied everywhere.
            expect(Number(c.applied)).toBeGreaterThan(0);
          }
          expect(await redBanner(page)).toBeUndefined();
          pages.push({ label: js.label, page });
        }
        stopped.stop();
        try {
          const stoppedAt = performance.now();
          // No navigation from here on: the page's own refresh (5 s) and its ask of every server (1 s each).
          const banners = await Promise.all(
            pages.map(({ label, page }) =>
              waitFor(
                `the leader's page (JavaScript ${label}) red, naming ${stopped.name} behind`,
                20_000,
                async () => {
                  const text = await redBanner(page);
                  return text?.includes(`Behind: ${stopped.name} (`) ? text : undefined;
                },
                200,
              ),
            ),
          );
          expect(performance.now() - stoppedAt).toBeLessThan(15_000);
          for (const [i, { label, page }] of pages.entries()) {
            // Only the stopped one is behind.
            const behind = banners[i]?.split("Behind: ")[1] ?? "";
            for (const s of cluster.servers.filter((x) => x !== stopped)) expect(behind).not.toContain(`${s.name} (`);
            await screenshot(page, `behind-js-${label}`, "cluster");
          }
        } finally {
          stopped.cont();
        }
        // Answering again: green once more, by the same refresh.
        await Promise.all(
          pages.map(({ label, page }) =>
            waitFor(
              `the leader's page (JavaScript ${label}) green again after SIGCONT`,
              30_000,
              async () => (await page.locator("main p.banner.ok").count()) > 0 && (await redBanner(page)) === undefined,
              200,
            ),
          ),
        );
        for (const { label, page } of pages) {
          await screenshot(page, `behind-js-${label}`, "cluster-after");
          await page.context().close();
        }
      }),
    90_000,
  );

  // Last in this block: it leaves two servers of three.
  test(
    "after SIGKILL of the leader, a survivor's open page shows the new leader by its own refresh, JavaScript on and off",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const survivor = cluster.followers(leader)[0];
        if (!survivor) throw new Error("no survivor");
        const pages: { label: string; page: Page }[] = [];
        for (const js of JS) {
          const page = await (await newContext(browser, js)).newPage();
          expect(await open(page, survivor, "/ui/cluster")).toBe(200);
          expect(await leaderShown(page)).toBe(leader.name);
          pages.push({ label: js.label, page });
        }
        await leader.kill();
        const killedAt = performance.now();
        // No navigation from here on: only the page's meta refresh brings the new leader in.
        // Deadline: an election, one refresh period (5 s) and the page's own wait for health.
        const shown = await Promise.all(
          pages.map(({ label, page }) =>
            waitFor(
              `the survivor's page (JavaScript ${label}) naming a new leader`,
              20_000,
              async () => {
                const name = await leaderShown(page);
                return name !== leader.name && name !== "none" ? name : undefined;
              },
              200,
            ),
          ),
        );
        const elapsed = performance.now() - killedAt;
        const newLeader = await cluster.waitForLeader(15_000);
        expect(shown).toEqual([newLeader.name, newLeader.name]);
        expect(elapsed).toBeLessThan(15_000);
        for (const { label, page } of pages) {
          // The killed server stays in the configuration: still three rows.
          expect(await serverRows(page)).toEqual(["s1", "s2", "s3"]);
          await screenshot(page, `failover-js-${label}`, "cluster");
          await page.context().close();
        }
      }),
    60_000,
  );
});

const READ_RULES = `variables {\n  path "app/*" { capabilities = ["read", "list"] }\n}\n`;

describe("the status pages in a browser with ACLs on", () => {
  let servers: ClusterServer[] = [];
  let mgmt = "";
  let reader = "";
  /** What the page must never show without a token: each server's name, ID and address. */
  let secrets: string[] = [];
  const as = (s: ClusterServer, method: string, path: string, body?: unknown) => callWithToken(mgmt, s, method, path, body);
  const cluster = useCluster("uibrowseracl", {
    start: async (c) => {
      ({ servers, mgmt } = await startAclServers(c));
      const s0 = servers[0];
      if (!s0) throw new Error("no server");
      await as(s0, "PUT", "/v1/acl/policy/app-read", { Rules: READ_RULES });
      reader = (
        JSON.parse((await as(s0, "POST", "/v1/acl/token", { Name: "reader", Type: "client", Policies: ["app-read"] })).text) as {
          SecretID: string;
        }
      ).SecretID;
      await as(s0, "PUT", "/v1/var/app/visible", { Items: { v: "seen" } });
      await as(s0, "PUT", "/v1/var/secret/hidden", { Items: { v: "never-shown" } });
      const config = JSON.parse((await as(s0, "GET", "/v1/operator/raft/configuration")).text) as {
        Servers: { ID: string; Node: string; Address: string }[];
      };
      expect(config.Servers.length).toBe(3);
      secrets = config.Servers.flatMap((c) => [c.ID, c.Node, c.Address]);
      // For the Snapshots page's table: a save and a refused restore.
      const save = await fetch(`${s0.url}/v1/operator/snapshot`, {
        headers: { "X-Edgenode-Token": mgmt },
        signal: AbortSignal.timeout(10_000),
      });
      expect(save.status).toBe(200);
      await save.arrayBuffer();
      const bad = await fetch(`${s0.url}/v1/operator/snapshot`, {
        method: "PUT",
        headers: { "X-Edgenode-Token": mgmt },
        body: "not a snapshot",
        signal: AbortSignal.timeout(10_000),
      });
      expect(bad.status).toBe(400);
    },
  });

  for (const js of JS) {
    test(
      `JavaScript ${js.label}: no token shows only the token form; a read-only token given through it sees its prefix only`,
      () =>
        withLogs(cluster, async () => {
          const s1 = servers[1];
          if (!s1) throw new Error("no server");
          const ctx = await newContext(browser, js);
          const page = await ctx.newPage();
          for (const path of ["/ui/", "/ui/vars?prefix=", "/ui/var/app/visible", "/ui/vars?prefix=app/"]) {
            expect(await open(page, s1, path)).toBe(403);
            const text = await visibleText(page);
            for (const secret of secrets) expect(text).not.toMatch(new RegExp(`\\b${secret.replaceAll(".", "\\.")}\\b`));
            expect(text).not.toContain("seen");
            expect(await page.locator("[data-server], #leader").count()).toBe(0);
            await expect(page.getByLabel("Token secret ID").isVisible()).resolves.toBe(true);
          }
          await screenshot(page, `acl-js-${js.label}`, "token-form");
          // The form brings the reader back to the page it asked for.
          await page.getByLabel("Token secret ID").fill(reader);
          await page.getByRole("button", { name: "Use token" }).click();
          await page.waitForURL(/\/ui\/vars\?prefix=app\/$/);
          await page.getByRole("link", { name: "app/visible" }).waitFor();
          expect(await visibleText(page)).not.toContain("secret/hidden");
          await screenshot(page, `acl-js-${js.label}`, "vars");
          await page.getByRole("link", { name: "app/visible" }).click();
          await page.waitForURL(/\/ui\/var\/app\/visible$/);
          expect(await page.locator("td pre").allInnerTexts()).toEqual(["seen"]);
          await screenshot(page, `acl-js-${js.label}`, "var");
          for (const path of ["/ui/vars?prefix=", "/ui/vars?prefix=secret/", "/ui/var/secret/hidden", "/ui/"]) {
            expect(await open(page, s1, path)).toBe(403);
            // With JavaScript on the load itself carries no token (it is in sessionStorage): the plain
            // form comes first, and the script asks again at once with the stored token.
            await page.getByText("This token may not read this page").waitFor();
            const text = await visibleText(page);
            expect(text).toContain("This token may not read this page");
            expect(text).not.toContain("never-shown");
            expect(await page.locator("[data-server], #leader").count()).toBe(0);
          }
          await screenshot(page, `acl-js-${js.label}`, "refused");
          await ctx.close();
        }),
      60_000,
    );
  }

  for (const js of JS) {
    test(
      `JavaScript ${js.label}: the token given through the form is kept ${js.javaScript ? "in sessionStorage, with no cookie" : "in an HttpOnly cookie, sessionStorage empty"}, and is never in a URL`,
      () =>
        withLogs(cluster, async () => {
          const s2 = servers[2];
          if (!s2) throw new Error("no server");
          const ctx = await newContext(browser, js);
          const page = await ctx.newPage();
          // Every URL the page asked for or showed: its requests (the script's fetches included) and its
          // address after each step (history.pushState/replaceState included).
          const urls: string[] = [];
          page.on("request", (r) => {
            urls.push(r.url());
          });
          const shown = () => urls.push(page.url());
          const stored = () => page.evaluate((key) => sessionStorage.getItem(key), "edgenode-token");
          expect(await open(page, s2, "/ui/vars?prefix=app/")).toBe(403);
          await page.getByLabel("Token secret ID").fill(reader);
          await page.getByRole("button", { name: "Use token" }).click();
          await page.waitForURL(/\/ui\/vars\?prefix=app\/$/);
          await page.getByRole("link", { name: "app/visible" }).waitFor();
          shown();
          const cookies = (await ctx.cookies()).map(({ name, value, httpOnly, sameSite, path }) => ({
            name,
            value,
            httpOnly,
            sameSite,
            path,
          }));
          if (js.javaScript) {
            expect(await stored()).toBe(reader);
            expect(cookies).toEqual([]);
          } else {
            expect(await stored()).toBeNull();
            expect(cookies).toEqual([{ name: "edgenode_ui_token", value: reader, httpOnly: true, sameSite: "Strict", path: "/ui" }]);
          }
          // Through the pages: a link, a reload (with JavaScript on: the form, then the script's fetch with
          // the stored token), the navigation to a page the token may not read, then "Forget token".
          await page.getByRole("link", { name: "app/visible" }).click();
          await page.waitForURL(/\/ui\/var\/app\/visible$/);
          await page.locator("td pre", { hasText: "seen" }).waitFor();
          shown();
          await page.reload();
          await page.locator("td pre", { hasText: "seen" }).waitFor();
          shown();
          await page.locator("nav").getByRole("link", { name: "Cluster" }).click();
          await page.waitForURL(/\/ui\/cluster$/);
          await page.getByText("This token may not read this page").waitFor();
          shown();
          await page.getByRole("button", { name: "Forget token" }).click();
          await page.waitForURL(/\/ui\/$/);
          await page.getByLabel("Token secret ID").waitFor();
          shown();
          expect(await page.getByText("This token may not read this page").count()).toBe(0);
          expect(await stored()).toBeNull();
          expect(await ctx.cookies()).toEqual([]);
          expect(urls.filter((u) => u.includes("/ui/var/app/visible")).length).toBeGreaterThan(0);
          expect(urls.filter((u) => u.includes(reader))).toEqual([]);
          await ctx.close();
        }),
      60_000,
    );
  }

  for (const js of JS) {
    test(
      `JavaScript ${js.label}: the keyboard alone signs in, moves between pages and opens a variable`,
      () =>
        withLogs(cluster, async () => {
          const s2 = servers[2];
          if (!s2) throw new Error("no server");
          const ctx = await newContext(browser, js);
          const page = await ctx.newPage();
          expect(await open(page, s2, "/ui/vars?prefix=app/")).toBe(403);
          /** Tab until the focused element is `name` (a link, button or field), at most 20 times. */
          const tabTo = async (name: RegExp) => {
            for (let i = 0; i < 20; i++) {
              await page.keyboard.press("Tab");
              // A string, not a function: this file is type-checked without the DOM's types.
              const focused = String(
                await page.evaluate(`(() => {
                  const a = document.activeElement;
                  if (!a) return "";
                  const label = a.id ? document.querySelector('label[for="' + a.id + '"]')?.textContent : "";
                  return ((label || "") + " " + (a.textContent || "") + " " + (a.getAttribute("aria-label") || "")).trim();
                })()`),
              );
              if (name.test(focused)) return;
            }
            throw new Error(`no focusable element named ${name} within 20 tabs`);
          };
          await tabTo(/Token secret ID/);
          await page.keyboard.type(reader);
          await page.keyboard.press("Enter");
          await page.locator("main h1", { hasText: "Variables" }).waitFor({ timeout: 10_000 });
          await tabTo(/^app\/visible$/);
          await page.keyboard.press("Enter");
          await page.locator("main h1", { hasText: "Variable app/visible" }).waitFor({ timeout: 10_000 });
          expect(await visibleText(page)).toContain("seen");
          await tabTo(/^Forget token$/);
          await page.keyboard.press("Enter");
          await page.getByLabel("Token secret ID").waitFor({ timeout: 10_000 });
          await ctx.close();
        }),
      60_000,
    );
  }

  for (const colorScheme of ["light", "dark"] as const)
    test(
      `axe-core finds no serious or critical WCAG 2 A/AA violation on the token form, cluster, vars, var and snapshots pages (${colorScheme} scheme)`,
      () =>
        withLogs(cluster, async () => {
          const s0 = servers[0];
          if (!s0) throw new Error("no server");
          const ctx = await newContext(browser, { javaScript: true, bypassCSP: true, colorScheme });
          const page = await ctx.newPage();
          const found: Record<string, string[]> = {};
          expect(await open(page, s0, "/ui/cluster")).toBe(403);
          found.token = await accessibilityViolations(page);
          await screenshot(page, `a11y-${colorScheme}`, "token");
          await page.getByLabel("Token secret ID").fill(mgmt);
          await page.getByRole("button", { name: "Use token" }).click();
          await page.waitForURL(/\/ui\/cluster$/);
          await page.locator("[data-server]").first().waitFor();
          found.cluster = await accessibilityViolations(page);
          await screenshot(page, `a11y-${colorScheme}`, "cluster");
          await openSignedIn(page, s0, "/ui/vars?prefix=app/", "Variables");
          found.vars = await accessibilityViolations(page);
          await screenshot(page, `a11y-${colorScheme}`, "vars");
          await openSignedIn(page, s0, "/ui/var/app/visible", "Variable app/visible");
          found.var = await accessibilityViolations(page);
          await screenshot(page, `a11y-${colorScheme}`, "var");
          // With a save (ok) and a refused restore (error) in its table.
          await openSignedIn(page, s0, "/ui/snapshots", "Snapshots");
          await page.locator('tr[data-op="restore"][data-outcome="error"]').first().waitFor();
          found.snapshots = await accessibilityViolations(page);
          await screenshot(page, `a11y-${colorScheme}`, "snapshots");
          expect(found).toEqual({ token: [], cluster: [], vars: [], var: [], snapshots: [] });
          await ctx.close();
        }),
      60_000,
    );
});
