// A real browser for the status pages' tests: Debian's chromium (test/support/install_tools.sh puts it
// at /usr/bin/chromium) driven headless by playwright-core, which never downloads a browser of its own.
// Also the screenshots each test leaves in test/artifacts/ and the axe-core accessibility check.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import axe from "axe-core";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export type { Browser, BrowserContext, Page };

const CHROMIUM = "/usr/bin/chromium";
/** Screenshots, one per test and page (git-ignored; CI may keep them as the run's artifacts). */
export const ARTIFACTS = join(import.meta.dir, "..", "artifacts");
/** Longest wait for a launch, a navigation or an element: the pages are served on loopback. */
const BROWSER_TIMEOUT_MS = 15_000;

/**
 * Chromium headless as root (hence no sandbox), with nothing that reaches out: the machines that run
 * the tests have no network beyond loopback, and Chromium's own background connections would be
 * refused by the dozen. Playwright gives each launch a fresh, empty profile directory of its own.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: BROWSER_TIMEOUT_MS,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A fresh context (no cookies, no storage) with JavaScript on or off, in the light or dark colour
 * scheme (the stylesheet has both). `bypassCSP` only for the accessibility check: the pages' CSP
 * forbids every script, axe-core's included.
 */
export async function newContext(
  browser: Browser,
  opts: { javaScript: boolean; bypassCSP?: boolean; colorScheme?: "light" | "dark" },
): Promise<BrowserContext> {
  const ctx = await browser.newContext({
    javaScriptEnabled: opts.javaScript,
    bypassCSP: opts.bypassCSP ?? false,
    colorScheme: opts.colorScheme ?? "light",
  });
  ctx.setDefaultTimeout(BROWSER_TIMEOUT_MS);
  return ctx;
}

/** Saves the page as test/artifacts/<test>-<page>.png; returns the path. */
export async function screenshot(page: Page, test: string, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${test}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The page's visible text, as a reader sees it (no markup, no attribute values). */
export async function visibleText(page: Page): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point (textContent would add the stylesheet's and hidden elements' text).
  return page.locator("body").innerText();
}

/** axe-core's rules tagged WCAG 2.0 level A and AA. */
export const A11Y_TAGS = ["wcag2a", "wcag2aa"];
/**
 * Rules of those tags not checked, each with why: none. The check runs with JavaScript on, where the
 * pages refresh by the script's poll (which waits while a field is being edited); the meta refresh is
 * inside <noscript>, for JavaScript off only, where axe cannot run.
 */
const NOT_CHECKED: string[] = [];
const FAILING_IMPACTS = new Set(["serious", "critical"]);

interface AxeResult {
  violations: { id: string; impact?: string | null; help: string; nodes: { target: unknown[] }[] }[];
}

/**
 * axe-core's violations of impact serious or critical on the page as it is now, one line each (rule,
 * impact, what, where); empty when there are none. Needs a context with JavaScript on and bypassCSP.
 */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // The pages refresh themselves every few seconds: aborting every request while axe runs keeps the
  // document as it is (no poll's answer swapped in, no reload) until the run is over.
  await page.route("**", (r) => r.abort("aborted"));
  let result: AxeResult;
  try {
    await page.addScriptTag({ content: axe.source });
    result = (await page.evaluate(
      ([tags, off]) =>
        (globalThis as unknown as { axe: { run(o: unknown): Promise<unknown> } }).axe.run({
          runOnly: { type: "tag", values: tags },
          rules: Object.fromEntries(off.map((id) => [id, { enabled: false }])),
        }),
      [A11Y_TAGS, NOT_CHECKED] as const,
    )) as AxeResult;
  } finally {
    await page.unroute("**");
  }
  return result.violations
    .filter((v) => FAILING_IMPACTS.has(v.impact ?? ""))
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(", ")}`);
}
