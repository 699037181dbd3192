// The browser helper's accessibility check can fail: on a page made to break two WCAG 2 A/AA rules
// (under the same CSP as the status pages), it names both.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { accessibilityViolations, type Browser, launchBrowser, newContext } from "./browser.ts";

const BAD_PAGE = `<!DOCTYPE html><html lang="en"><head><title>bad</title></head>
<body><main><h1 style="color:#bbb;background:#fff">Faint heading</h1><form><input name="unlabelled"></form></main></body></html>`;

let browser: Browser;
let server: ReturnType<typeof Bun.serve>;
beforeAll(async () => {
  browser = await launchBrowser();
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => new Response(BAD_PAGE, { headers: { "content-type": "text/html", "content-security-policy": "default-src 'none'" } }),
  });
});
afterAll(async () => {
  await browser?.close();
  server?.stop(true);
});

test("the accessibility check names the serious violations of a page that has them", async () => {
  const ctx = await newContext(browser, { javaScript: true, bypassCSP: true });
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${server.port}/`);
  const found = await accessibilityViolations(page);
  expect(found.map((v) => v.split(" ")[0]).sort()).toEqual(["color-contrast", "label"]);
  await ctx.close();
}, 30_000);
