/** @jsxImportSource hono/jsx */
// The token the pages read with. A form POST stores it in an HttpOnly, SameSite=Strict cookie scoped
// to /ui: the pages then work with JavaScript off, no script can read the secret, another site cannot
// send it, and it never appears in a URL (so in no log, history or Referer). Chosen over the
// sessionStorage + X-Edgenode-Token header variant, which needs a script to render any data.
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { QueryOptions } from "../../server/backend.ts";
import { MAX_TOKEN_CHARS } from "../query.ts";
import { Banner, Layout } from "./layout.tsx";

const COOKIE = "edgenode_ui_token";

/** The token a page reads with: the X-Edgenode-Token header when given, else the session cookie. */
export function uiQuery(c: Context): QueryOptions {
  const token = c.req.header("x-edgenode-token") || getCookie(c, COOKIE);
  return token && token.length <= MAX_TOKEN_CHARS ? { token } : {};
}

export async function signIn(c: Context): Promise<Response> {
  const form = await c.req.parseBody();
  const token = typeof form.token === "string" ? form.token.trim() : "";
  if (token && token.length <= MAX_TOKEN_CHARS)
    setCookie(c, COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/ui", secure: new URL(c.req.url).protocol === "https:" });
  const back = typeof form.back === "string" && /^\/ui\/[\w/?=&%.~-]*$/.test(form.back) ? form.back : "/ui/";
  return c.redirect(back, 303);
}

export function signOut(c: Context): Response {
  deleteCookie(c, COOKIE, { path: "/ui" });
  return c.redirect("/ui/", 303);
}

/** What a page shows instead of its data when the token may not read it: nothing but the form. */
export function TokenPage(props: { hadToken: boolean; back: string }) {
  return (
    <Layout title="Token required" signedIn={props.hadToken}>
      {props.hadToken ? <Banner bad={true}>This token may not read this page.</Banner> : null}
      <p>ACLs are on: give a token (its secret ID) to see this page.</p>
      <form method="post" action="/ui/token">
        <label for="token">Token secret ID</label>
        <input id="token" name="token" type="password" autocomplete="off" required />
        <input type="hidden" name="back" value={props.back} />
        <button type="submit">Use token</button>
      </form>
    </Layout>
  );
}
