/** @jsxImportSource hono/jsx */
// The token the pages read with, never in a URL (so in no log, history or Referer). With JavaScript on,
// the script (app_script.ts) takes the form's submit, keeps the token in sessionStorage and sends it as
// X-Edgenode-Token. With JavaScript off, the form POSTs it here and it is kept in an HttpOnly,
// SameSite=Strict cookie scoped to /ui: no script can read it, another site cannot send it.
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { EdgeError } from "../../lib/errors.ts";
import type { QueryOptions } from "../../server/backend.ts";
import { MAX_TOKEN_CHARS } from "../query.ts";
import { Banner, Layout } from "./layout.tsx";

const COOKIE = "edgenode_ui_token";

/** The token a page reads with: the X-Edgenode-Token header when given, else the session cookie. */
export function uiQuery(c: Context): QueryOptions {
  const token = c.req.header("x-edgenode-token") || getCookie(c, COOKIE);
  return token && token.length <= MAX_TOKEN_CHARS ? { token } : {};
}

/**
 * Why a POST to the token routes comes from another site, or undefined when it comes from a page of this
 * server. SameSite keeps the cookie from being sent cross-site, not from being set: without this check
 * another site could post its own token here (login CSRF) and the browser would read with the
 * attacker's rights. Browsers send Origin on every POST (Sec-Fetch-Site too, when they know it); a
 * request with neither is not a browser's form and has no one's cookie to plant.
 */
function crossSite(c: Context): string | undefined {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") return `Sec-Fetch-Site is ${site}`;
  const origin = c.req.header("origin");
  if (origin === undefined) return undefined;
  const host = c.req.header("host") ?? new URL(c.req.url).host;
  try {
    const o = new URL(origin);
    // Read the Host with the Origin's scheme, so that an omitted default port compares equal.
    if (o.host === new URL(`${o.protocol}//${host}`).host) return undefined;
  } catch {
    // "null" (a sandboxed frame, a redirect across sites) or garbage: not this server.
  }
  return `Origin ${origin} is not this server (${host})`;
}

function refuseCrossSite(c: Context): void {
  const why = crossSite(c);
  if (why) throw new EdgeError("PERMISSION_DENIED", `Cross-site request to ${c.req.path} refused: ${why}. Use the form on this server's own page.`);
}

export async function signIn(c: Context): Promise<Response> {
  refuseCrossSite(c);
  const form = await c.req.parseBody();
  const token = typeof form.token === "string" ? form.token.trim() : "";
  if (token && token.length <= MAX_TOKEN_CHARS)
    setCookie(c, COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/ui", secure: new URL(c.req.url).protocol === "https:" });
  const back = typeof form.back === "string" && /^\/ui\/[\w/?=&%.~-]*$/.test(form.back) ? form.back : "/ui/";
  return c.redirect(back, 303);
}

export function signOut(c: Context): Response {
  refuseCrossSite(c);
  deleteCookie(c, COOKIE, { path: "/ui" });
  return c.redirect("/ui/", 303);
}

/** What a page shows instead of its data when the token may not read it: nothing but the form. */
export function TokenPage(props: { hadToken: boolean; back: string }) {
  return (
    <Layout title="Token required" signedIn={props.hadToken}>
      {props.hadToken ? <Banner bad={true}>This token may not read this page.</Banner> : null}
      <p>ACLs are on: give a token (its secret ID) to see this page.</p>
      {/* With JavaScript on, app_script.ts takes this form's submit by its action and its fields' names. */}
      <form method="post" action="/ui/token">
        <label for="token">Token secret ID</label>
        <input id="token" name="token" type="password" autocomplete="off" required />
        <input type="hidden" name="back" value={props.back} />
        <button type="submit">Use token</button>
      </form>
    </Layout>
  );
}
