/** @jsxImportSource hono/jsx */
// /ui/*: the status pages, rendered on the server from the same Backend calls the /v1 routes make
// (no private way in: the ACL checks each call as it checks the API's). A call the token may not
// make renders the token form and nothing else.
import { Hono, type Context } from "hono";
import type { Child } from "hono/jsx";
import { withDeadline } from "../../lib/deadline.ts";
import { EdgeError, toEdgeError } from "../../lib/errors.ts";
import { typedCall, type Backend, type QueryOptions } from "../../server/backend.ts";
import { intParam } from "../query.ts";
import { appScript } from "./app_script.ts";
import { ClusterPage, type ClusterData } from "./cluster.tsx";
import { Banner, Layout } from "./layout.tsx";
import { SnapshotsPage } from "./snapshots.tsx";
import { signIn, signOut, TokenPage, uiQuery } from "./token.tsx";
import { UI_PER_PAGE, VarPageView, VarsPage } from "./vars.tsx";

const MAX_PREFIX_CHARS = 1024;
/** As /v1/vars (http/vars.ts). */
const MAX_PER_PAGE = 1000;
/** Longest wait for the leader's health answer, and for the raft stats (under the page's refresh period). */
const HEALTH_WAIT_MS = 2_000;

/** A part of the page that may be missing: its reply, or why not. A refusal is not a missing part. */
async function partOf<T>(p: Promise<{ reply: T }>, what: string): Promise<{ reply: T } | { error: string }> {
  try {
    return { reply: (await withDeadline(p, HEALTH_WAIT_MS, what)).reply };
  } catch (e) {
    const err = toEdgeError(e);
    if (err.code === "PERMISSION_DENIED") throw err;
    return { error: err.message };
  }
}

/**
 * The cluster page's data, read as GET /v1/operator/raft/configuration, /raft/stats,
 * /autopilot/configuration and /autopilot/health read it.
 */
export async function clusterData(b: Backend, q: QueryOptions): Promise<ClusterData> {
  const call = typedCall(b);
  // Stale: a follower answers from its own view, so the page still shows the servers with no leader.
  const config = (await call("Operator.RaftGetConfiguration", {}, { ...q, stale: true })).reply;
  const region = String(b.self().Region ?? "");
  // Health is the leader's answer: with none known, asking would wait out the forward's hold for a
  // leader and the page would hang through an election instead of saying so.
  if (!config.Servers.some((s) => s.Leader)) return { region, config, healthError: "no leader" };
  // Bounded too: a leader that just died is still named until the election, and the page should
  // say "health unknown" within its refresh rather than wait for the next leader. The stats are asked
  // here (stale): this server asks every server itself, each within the stats' own deadline.
  const [health, stats, autopilot] = await Promise.all([
    partOf(call("Operator.AutopilotHealth", {}, q), "no answer from the leader in time"),
    partOf(call("Operator.RaftStats", {}, { ...q, stale: true }), "no raft stats in time"),
    partOf(call("Operator.AutopilotGetConfiguration", {}, { ...q, stale: true }), "no autopilot configuration in time"),
  ]);
  return {
    region,
    config,
    ...("reply" in health ? { health: health.reply } : { healthError: health.error }),
    ...("reply" in stats ? { stats: stats.reply } : { statsError: stats.error }),
    ...("reply" in autopilot ? { maxTrailingLogs: autopilot.reply.MaxTrailingLogs } : {}),
  };
}

function varPath(c: Context): string {
  const raw = new URL(c.req.url).pathname.slice("/ui/var/".length);
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new EdgeError("BAD_REQUEST", "invalid percent-encoding in the variable path");
  }
}

/** A page as a response: the doctype first (standards mode, not quirks), then the rendered tree. */
function html(c: Context, node: Child, status: 200 | 403 | 404 | 503 = 200): Response {
  return c.html(`<!DOCTYPE html>${String(node)}`, status);
}

function ErrorPage(props: { message: string; signedIn: boolean }) {
  return (
    <Layout title="Unavailable" refresh={true} signedIn={props.signedIn}>
      <Banner bad={true}>{props.message || "error"}</Banner>
    </Layout>
  );
}

export function uiRoutes(b: Backend): Hono {
  const r = new Hono();
  const call = typedCall(b);
  // Every page: a refused call shows the token form (403), never a part of the page.
  const page = (render: (c: Context, q: QueryOptions, signedIn: boolean) => Promise<Response>) => async (c: Context) => {
    const q = uiQuery(c);
    c.header("Cache-Control", "no-store");
    // Scripts only from this server (/ui/app.js: no inline script, no eval), and fetch() only to it.
    c.header(
      "Content-Security-Policy",
      "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    try {
      return await render(c, q, q.token !== undefined);
    } catch (e) {
      const err = toEdgeError(e);
      if (err.code !== "PERMISSION_DENIED") {
        // A page, not the API's plain text, so that it keeps reloading itself through an election.
        // The message is the one the API would answer with the same token.
        return html(c, <ErrorPage message={err.message} signedIn={q.token !== undefined} />, err.status as 503);
      }
      const back = new URL(c.req.url);
      return html(c, <TokenPage hadToken={q.token !== undefined} back={back.pathname + back.search} />, 403);
    }
  };
  const cluster = page(async (c, q, signedIn) => html(c, <ClusterPage data={await clusterData(b, q)} signedIn={signedIn} />));
  r.get("/ui", (c) => c.redirect("/ui/", 301));
  r.get("/ui/", cluster);
  r.get("/ui/cluster", cluster);
  r.get(
    "/ui/vars",
    page(async (c, q, signedIn) => {
      const prefix = (c.req.query("prefix") ?? "").slice(0, MAX_PREFIX_CHARS);
      const nextToken = c.req.query("next_token")?.slice(0, MAX_PREFIX_CHARS);
      // per_page as /v1/vars takes it.
      const perPage = intParam(c, "per_page") ?? UI_PER_PAGE;
      if (perPage < 1 || perPage > MAX_PER_PAGE) throw new EdgeError("BAD_REQUEST", `per_page must be between 1 and ${MAX_PER_PAGE}`);
      const res = await call("Var.List", { prefix, perPage, nextToken }, q);
      return html(c, <VarsPage prefix={prefix} perPage={perPage} page={res.reply} signedIn={signedIn} />);
    }),
  );
  r.get(
    "/ui/var/*",
    page(async (c, q, signedIn) => {
      const path = varPath(c);
      const res = await call("Var.Get", { path }, q);
      return html(c, <VarPageView path={path} v={res.reply} signedIn={signedIn} />, res.reply ? 200 : 404);
    }),
  );
  r.get(
    "/ui/snapshots",
    page(async (c, q, signedIn) => html(c, <SnapshotsPage data={(await call("Operator.SnapshotHistory", {}, q)).reply} signedIn={signedIn} />)),
  );
  r.get("/ui/app.js", appScript);
  r.post("/ui/token", signIn);
  r.post("/ui/logout", signOut);
  return r;
}
