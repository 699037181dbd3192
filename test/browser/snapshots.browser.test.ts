// The Snapshots page in a real browser (headless chromium, test/browser/browser.ts) against a 3-server
// cluster of the compiled binary: a restore of a saved snapshot, sent through a follower and held at each
// phase by the restore's test hook (EDGENODE_TEST_PAUSE_FILE, src/server/restore_phase.ts), is shown in
// progress at each phase by the open page's own refresh, JavaScript on and off, then as a finished
// restore with the index the upload answered; axe-core checks the page with the restore in progress.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterServer } from "../cluster/harness.ts";
import { useCluster, waitFor, withLogs } from "../cluster/harness.ts";
import { restoreFile, saveFile, startClusterIn } from "../cluster/snapshot_cluster.ts";
import { accessibilityViolations, type Browser, launchBrowser, newContext, type Page, screenshot } from "./browser.ts";

/** The file, in each server's data dir, whose content names the restore phase to pause at. */
const PAUSE_FILE = "test-pause-at";
/** Variables of random text, enough for several 64 KiB upload chunks: the hook holds the upload after its first. */
const VARS = 80;
const VALUE_BYTES = 3000;

const JS = [
  { javaScript: false, label: "off" },
  { javaScript: true, label: "on" },
];

/** The page's restore in progress (its hooks and text), or undefined when none is shown or the page is between loads. */
async function progress(page: Page): Promise<{ phase: string; server: string; text: string } | undefined> {
  try {
    const el = page.locator("#restore-progress");
    if ((await el.count()) === 0) return undefined;
    return await el.evaluate(
      (e) => ({ phase: e.getAttribute("data-phase") ?? "", server: e.getAttribute("data-server") ?? "", text: e.textContent ?? "" }),
      undefined,
      { timeout: 1_000 },
    );
  } catch {
    // A JavaScript-off page reloading itself (its meta refresh) between count and evaluate.
    return undefined;
  }
}

/** The Index cell of the finished restore row of `server` (found by its column's header), or undefined. */
async function restoreRowIndex(page: Page, server: string): Promise<string | undefined> {
  try {
    const row = page.locator(`tr[data-op="restore"][data-outcome="ok"][data-server="${server}"]`);
    if ((await row.count()) !== 1) return undefined;
    return await row.evaluate(
      (tr) => {
        const heads = [...(tr.closest("table")?.querySelectorAll("thead th") ?? [])].map((th) => th.textContent?.trim());
        return tr.children[heads.indexOf("Index")]?.textContent?.trim();
      },
      undefined,
      { timeout: 1_000 },
    );
  } catch {
    return undefined;
  }
}

let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);

const cluster = useCluster("uibrowsersnap", { start: (c) => startClusterIn(c, { env: { EDGENODE_TEST_PAUSE_FILE: PAUSE_FILE } }) });

afterAll(async () => {
  await browser?.close();
});

describe("the Snapshots page in a browser", () => {
  test(
    "a restore through a follower shows its phases on the open page, JavaScript on and off, and ends as a restore row with the upload's index",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const [relay, watched] = cluster.followers(leader);
        if (!relay || !watched) throw new Error("need two followers");
        const pauseAt = (phase: string) => writeFileSync(join(leader.dataDir, PAUSE_FILE), phase);
        for (let i = 0; i < VARS; i += 10)
          await Promise.all(
            Array.from({ length: 10 }, (_, j) => leader.putVar(`big/k${i + j}`, { data: randomBytes(VALUE_BYTES).toString("base64") })),
          );
        const saved = join(cluster.dir, "saved.snap");
        expect((await saveFile(relay, saved)).size).toBeGreaterThan(3 * 64 * 1024);

        // Opened before the restore on the third server; no navigation from here on, only the pages' refresh.
        const pages: { label: string; page: Page }[] = [];
        for (const js of JS) {
          const page = await (await newContext(browser, js)).newPage();
          const r = await page.goto(`${watched.url}/ui/snapshots`);
          expect(r?.status()).toBe(200);
          expect(await progress(page)).toBeUndefined();
          pages.push({ label: js.label, page });
        }
        const shows = (phase: string, server: ClusterServer) =>
          Promise.all(
            pages.map(({ label, page }) =>
              waitFor(
                `the page (JavaScript ${label}) showing the restore ${phase} on ${server.name}`,
                30_000,
                async () => {
                  const p = await progress(page);
                  return p?.phase === phase && p.server === server.name ? p : undefined;
                },
                200,
              ),
            ),
          );

        pauseAt("upload");
        const upload = restoreFile(relay, saved);
        let a11y: string[] = ["not run"];
        try {
          for (const [hook, phase] of [
            ["upload", "received"],
            ["verified", "verified"],
            ["staged", "staged"],
            ["apply", "committed"],
            ["swapped", "swapped"],
          ] as const) {
            pauseAt(hook);
            for (const p of await shows(phase, leader)) {
              expect(p.text).toContain(`Restore on ${leader.name} (leader): `);
              expect(p.text).toMatch(/, \d+(\.\d)? (B|KiB|MiB) so far, since /);
              if (phase === "staged") expect(p.text).toMatch(/staged on [23] servers/);
            }
            for (const { label, page } of pages) await screenshot(page, `restore-js-${label}`, `1-${phase}`);
            if (phase === "staged") {
              // The accessibility check of the page with a restore in progress (its paragraph is shown only then).
              const ctx = await newContext(browser, { javaScript: true, bypassCSP: true });
              const page = await ctx.newPage();
              await page.goto(`${watched.url}/ui/snapshots`);
              await page.locator('#restore-progress[data-phase="staged"]').waitFor();
              a11y = await accessibilityViolations(page);
              await ctx.close();
            }
          }
        } finally {
          pauseAt("");
        }
        const up = await upload;
        expect(up.status).toBe(200);
        const index = (up.body as { Index: number }).Index;
        expect(index).toBeGreaterThan(0);
        expect(a11y).toEqual([]);

        // Done: no restore in progress, and the leader's row of it, ok, with the upload's index.
        for (const { label, page } of pages) {
          const shown = await waitFor(
            `the page (JavaScript ${label}) showing the finished restore`,
            30_000,
            async () => {
              if ((await progress(page)) !== undefined) return undefined;
              const [atLeader, atRelay] = [await restoreRowIndex(page, leader.name), await restoreRowIndex(page, relay.name)];
              return atLeader !== undefined && atRelay !== undefined ? { atLeader, atRelay } : undefined;
            },
            200,
          );
          // The leader's row and the relaying follower's.
          expect(shown).toEqual({ atLeader: String(index), atRelay: String(index) });
          await screenshot(page, `restore-js-${label}`, "2-done");
          await page.context().close();
        }
      }),
    120_000,
  );
});
