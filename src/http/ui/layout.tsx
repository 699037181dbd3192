/** @jsxImportSource hono/jsx */
// (The pragma in each .tsx: Bun run from source in another directory does not apply tsconfig.json's jsxImportSource.)
// The frame every page shares: title, navigation, the inlined stylesheet and the self-refresh.
import type { Child } from "hono/jsx";
import { STYLE } from "./style.ts";

/** Seconds between a page's reloads of itself. */
export const REFRESH_SECONDS = 5;

export function Layout(props: { title: string; refresh?: boolean; signedIn?: boolean; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* A meta refresh, not a script poll: the simplest thing that works with JavaScript off, and a
            page costs the server one render of a few KiB every few seconds. */}
        {props.refresh ? <meta http-equiv="refresh" content={String(REFRESH_SECONDS)} /> : null}
        <title>{`${props.title} · edgenode`}</title>
        <style>{STYLE}</style>
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
        <main>
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
