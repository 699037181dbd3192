// The status page's one script, for the JavaScript-on path (the pages work without it: a form puts the
// token in an HttpOnly cookie, a <noscript> meta refresh reloads them). With it the token stays in
// sessionStorage, as issue #26 asks, and goes as X-Edgenode-Token on every fetch, never in a URL or a
// cookie; links, popstate and GET forms under /ui/ are fetched with the header and the answer's
// <title>, <nav> and <main> swapped in. A 403 token form rendered for a load without the header (a
// reload: no cookie on this path) is fetched again at once with the stored token, so a token is typed
// once per session.
//
// Refresh is a short poll of the current page, not a blocking query: what the cluster page shows
// (health, last contact, lag) changes with no raft index moving, so there is no index to block on,
// and a poll costs one render of a few KiB per period. The poll skips hidden tabs, never swaps while a
// form field is focused or edited, and swaps only what changed (so focus in <nav> is not lost). A
// failed fetch keeps the page and shows a "connection lost, retrying" banner until one succeeds.
//
// Plain ES2017 in a string: no build step, no eval, no inline script (the pages' CSP is script-src
// 'self'); DOMParser runs no script of the fetched page, and only server-rendered, escaped HTML is
// swapped in.
import { createHash } from "node:crypto";
import type { Context } from "hono";

/** sessionStorage key of the token. */
const STORAGE_KEY = "edgenode-token";
/** Seconds between retries of a page that does not refresh itself, once a fetch failed. */
const RETRY_SECONDS = 5;
/** Longest wait for one page; past it the fetch counts as failed. */
const FETCH_TIMEOUT_MS = 10_000;

const SOURCE = `"use strict";
(function () {
  var KEY = ${JSON.stringify(STORAGE_KEY)}, RETRY = ${RETRY_SECONDS}, TIMEOUT = ${FETCH_TIMEOUT_MS};
  var seq = 0, timer = 0, banner = null;
  function token() { try { return sessionStorage.getItem(KEY); } catch (e) { return null; } }
  function main() { return document.querySelector("main"); }
  function ours(u) {
    return u.origin === location.origin && (u.pathname === "/ui" || u.pathname.indexOf("/ui/") === 0);
  }
  function typing() {
    var a = document.activeElement;
    if (a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return true;
    var fs = document.querySelectorAll("main input, main textarea");
    for (var i = 0; i < fs.length; i++) if (fs[i].type !== "hidden" && fs[i].value !== fs[i].defaultValue) return true;
    return false;
  }
  function lost(why) {
    if (!banner) {
      banner = document.createElement("p");
      banner.id = "connection";
      banner.className = "banner bad";
      banner.setAttribute("role", "alert");
      document.body.insertBefore(banner, main());
    }
    banner.textContent = "Connection lost (" + why + "): retrying every " + period() + " s.";
  }
  function period() { var m = main(); return Number(m && m.getAttribute("data-refresh")) || RETRY; }
  function schedule() { clearTimeout(timer); timer = setTimeout(tick, period() * 1000); }
  function tick() {
    var m = main();
    if (!document.hidden && !typing() && (banner || (m && m.hasAttribute("data-refresh")))) load(location.href, "poll");
    else schedule();
  }
  function replace(cur, next) {
    if (cur && next && cur.outerHTML !== next.outerHTML) cur.replaceWith(document.importNode(next, true));
  }
  function swap(doc, next, mode) {
    var a = document.activeElement, m = main();
    var keep = a && m && m.contains(a) && a.getAttribute("href");
    document.title = doc.title;
    replace(document.querySelector("nav"), doc.querySelector("nav"));
    replace(m, next);
    if (mode === "push" || mode === "replace") {
      var h = document.querySelector("main h1");
      if (h) { h.tabIndex = -1; h.focus(); }
    } else if (keep) {
      var same = document.querySelector('main a[href="' + CSS.escape(keep) + '"]');
      if (same) same.focus({ preventScroll: true });
    }
  }
  function errorMain(status, text) {
    var m = document.createElement("main"), h = document.createElement("h1"), p = document.createElement("p");
    h.textContent = "Error " + status;
    p.className = "banner bad";
    p.setAttribute("role", "alert");
    p.textContent = text.slice(0, 2000);
    m.append(h, p);
    return m;
  }
  function load(url, mode) {
    var my = ++seq, ctl = new AbortController(), headers = { Accept: "text/html" }, t = token();
    if (t) headers["X-Edgenode-Token"] = t;
    clearTimeout(timer);
    var kill = setTimeout(function () { ctl.abort(); }, TIMEOUT);
    fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin", signal: ctl.signal })
      .then(function (res) {
        return res.text().then(function (text) {
          if (my !== seq) return;
          var html = /^text\\/html/.test(res.headers.get("content-type") || "");
          var doc = new DOMParser().parseFromString(html ? text : "", "text/html");
          var next = html && doc.querySelector("main");
          if (!next) {
            if (mode === "poll") return lost("the server answered " + res.status);
            doc.title = "Error " + res.status + " · edgenode";
            next = errorMain(res.status, text);
          }
          if (banner) { banner.remove(); banner = null; }
          if (mode === "poll" && typing()) return;
          swap(doc, next, mode);
          if (mode === "push") { history.pushState(null, "", res.url || url); scrollTo(0, 0); }
          else if (mode === "replace") history.replaceState(null, "", res.url || url);
        });
      })
      .catch(function (e) {
        if (my === seq) lost(e && e.name === "AbortError" ? "no answer in " + TIMEOUT / 1000 + " s" : "network error");
      })
      .then(function () {
        clearTimeout(kill);
        if (my === seq) schedule();
      });
  }
  document.addEventListener("click", function (e) {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    var a = e.target.closest && e.target.closest("a[href]");
    if (!a || a.target || a.hasAttribute("download")) return;
    var u = new URL(a.href, location.href);
    if (!ours(u) || (u.hash && u.pathname === location.pathname && u.search === location.search)) return;
    e.preventDefault();
    load(u.href, "push");
  });
  document.addEventListener("submit", function (e) {
    var f = e.target, u = new URL(f.getAttribute("action") || location.href, location.href);
    if (e.defaultPrevented || !ours(u)) return;
    if (u.pathname === "/ui/token") {
      var input = f.querySelector("[name=token]"), back = f.querySelector("[name=back]");
      var v = input ? input.value.trim() : "";
      var to = new URL(back ? back.value : "/ui/", location.href);
      if (!v || !ours(to)) return;
      try { sessionStorage.setItem(KEY, v); } catch (x) { return; }
      e.preventDefault();
      load(to.href, "replace");
    } else if (u.pathname === "/ui/logout") {
      try { sessionStorage.removeItem(KEY); } catch (x) {}
    } else if (f.method === "get") {
      e.preventDefault();
      u.search = new URLSearchParams(new FormData(f)).toString();
      load(u.href, "push");
    }
  });
  addEventListener("popstate", function () { load(location.href, "pop"); });
  if (token() && document.querySelector('main form[action="/ui/token"]')) load(location.href, "replace");
  else schedule();
})();
`;

/** As served: the source less its indentation (it has no multi-line string for that to change). */
const SCRIPT = SOURCE.replace(/^ +/gm, "");

/** The script's version: its URL carries it, so a browser may keep it for a year and still never run a stale one. */
const VERSION = createHash("sha256").update(SCRIPT).digest("hex").slice(0, 16);

/** Where the pages load the script from. */
export const APP_SCRIPT_PATH = `/ui/app.js?v=${VERSION}`;

/** GET /ui/app.js: cached for good under its current version, revalidated under any other URL. */
export function appScript(c: Context): Response {
  const current = c.req.query("v") === VERSION;
  return c.body(SCRIPT, 200, {
    "Content-Type": "text/javascript; charset=utf-8",
    "Cache-Control": current ? "public, max-age=31536000, immutable" : "no-cache",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
  });
}
