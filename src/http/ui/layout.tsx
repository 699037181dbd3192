/** @jsxImportSource hono/jsx */
// (The pragma in each .tsx: Bun run from source in another directory does not apply tsconfig.json's jsxImportSource.)
// The frame every page shares: title, navigation, the inlined stylesheet, the script and the self-refresh.
import type { Child } from "hono/jsx";
import { APP_SCRIPT_PATH } from "./app_script.ts";
import { STYLE } from "./style.ts";

/** Seconds between a page's reloads of itself. */
export const REFRESH_SECONDS = 5;

export function Layout(props: { title: string; refresh?: boolean; signedIn?: boolean; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* With JavaScript off a meta refresh reloads the page (a page costs the server one render of a
            few KiB every few seconds). In <noscript> so that with JavaScript on it does not fire: the
            script polls instead, keeping the token in a header and what the user is typing. */}
        {props.refresh ? (
          <noscript>
            <meta http-equiv="refresh" content={String(REFRESH_SECONDS)} />
          </noscript>
        ) : null}
        <title>{`${props.title} · edgenode`}</title>
        <style>{STYLE}</style>
        <script src={APP_SCRIPT_PATH} defer></script>
      </head>
      <body>
        <nav aria-label="pages">
          <strong>edgenode</strong>
          <a href="/ui/cluster">Cluster</a>
          <a href="/ui/vars">Variables</a>
          <a href="/ui/snapshots">Snapshots</a>
          {props.signedIn ? (
            <form method="post" action="/ui/logout" style="margin-left:auto">
              <button type="submit">Forget token</button>
            </form>
          ) : null}
        </nav>
        {/* data-refresh tells the script this page refreshes itself, and how often. */}
        <main data-refresh={props.refresh ? String(REFRESH_SECONDS) : undefined}>
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

export function Banner(props: { bad: boolean; children?: Child }) {
  return (
    <p class={props.bad ? "banner bad" : "banner ok"} role={props.bad ? "alert" : "status"}>
      {props.children}
    </p>
  );
}
