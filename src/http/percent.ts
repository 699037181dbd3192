// Refuses a request whose path or query holds a malformed percent-encoding (`%ZZ`, a cut-off UTF-8
// sequence) with 400 before any route or token check sees it, instead of a 500 or a silently raw value.
import type { MiddlewareHandler } from "hono";
import { EdgeError } from "../lib/errors.ts";

/** Whether every `%` in `s` starts an escape and the escapes decode as UTF-8. */
export function wellEncoded(s: string): boolean {
  if (!s.includes("%")) return true;
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

export function percentEncodingCheck(): MiddlewareHandler {
  return async (c, next) => {
    const url = c.req.url;
    if (url.includes("%")) {
      const u = new URL(url);
      if (!wellEncoded(u.pathname))
        throw new EdgeError("BAD_REQUEST", `invalid percent-encoding in the path ${JSON.stringify(u.pathname)}`);
      // `+` is a space in a query; only the escapes matter here.
      if (!wellEncoded(u.search)) throw new EdgeError("BAD_REQUEST", "invalid percent-encoding in the query string");
    }
    return next();
  };
}
