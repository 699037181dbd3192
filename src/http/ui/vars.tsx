/** @jsxImportSource hono/jsx */
// The Variables pages: a listing by path prefix, paginated as /v1/vars, and one variable with its
// items, indexes, times and lock. Read-only: nothing here changes a variable.
import type { PublicVar, VarPage } from "../../server/var_endpoints.ts";
import { Banner, Layout } from "./layout.tsx";

/** Variables per page of the listing. */
export const UI_PER_PAGE = 100;

const varHref = (path: string) => `/ui/var/${path.split("/").map(encodeURIComponent).join("/")}`;

/** A variable's time (Unix milliseconds, state/tables.ts) in ISO form. */
function when(ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : "–";
}

export function VarsPage(props: { prefix: string; perPage: number; page: VarPage; signedIn: boolean }) {
  const { prefix, page } = props;
  const per = props.perPage === UI_PER_PAGE ? "" : `&per_page=${props.perPage}`;
  const next = page.nextToken
    ? `/ui/vars?prefix=${encodeURIComponent(prefix)}${per}&next_token=${encodeURIComponent(page.nextToken)}`
    : undefined;
  return (
    <Layout title="Variables" refresh={true} signedIn={props.signedIn}>
      <form method="get" action="/ui/vars">
        <label for="prefix">Path prefix</label>
        <input id="prefix" name="prefix" value={prefix} />
        <button type="submit">List</button>
      </form>
      {page.vars.length === 0 ? (
        <p>No variables under this prefix.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Path</th>
              <th scope="col" class="num">
                Modify index
              </th>
              <th scope="col">Modified</th>
              <th scope="col">Lock</th>
            </tr>
          </thead>
          <tbody>
            {page.vars.map((v) => (
              <tr>
                <td>
                  <a href={varHref(v.Path)}>{v.Path}</a>
                </td>
                <td class="num">{String(v.ModifyIndex)}</td>
                <td>{when(v.ModifyTime)}</td>
                <td>{v.Lock ? "held" : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next ? <a href={next}>Next page</a> : null}
    </Layout>
  );
}

export function VarPageView(props: { path: string; v: PublicVar | null; signedIn: boolean }) {
  const v = props.v;
  if (!v)
    return (
      <Layout title="Variable" signedIn={props.signedIn}>
        <Banner bad={true}>No variable at {props.path}.</Banner>
      </Layout>
    );
  return (
    <Layout title={`Variable ${v.Path}`} refresh={true} signedIn={props.signedIn}>
      <dl>
        <dt>Create index</dt>
        <dd>{String(v.CreateIndex)}</dd>
        <dt>Modify index</dt>
        <dd>{String(v.ModifyIndex)}</dd>
        <dt>Created</dt>
        <dd>{when(v.CreateTime)}</dd>
        <dt>Modified</dt>
        <dd>{when(v.ModifyTime)}</dd>
        <dt>Lock</dt>
        <dd>{v.Lock ? `held${v.Lock.ID ? ` by ${v.Lock.ID}` : ""} (TTL ${v.Lock.TTL} ms, lock delay ${v.Lock.LockDelay} ms)` : "none"}</dd>
      </dl>
      <h2>Items</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(v.Items).map(([k, val]) => (
            <tr>
              <td>
                <code>{k}</code>
              </td>
              <td>
                <pre>{val}</pre>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Layout>
  );
}
