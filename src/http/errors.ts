// Turns anything a handler throws into the SPEC §3 error model: a status from the
// one code table and a plain-text body.
import type { Context } from "hono";
import { toEdgeError } from "../lib/errors.ts";

export function errorResponse(c: Context, e: unknown): Response {
  const err = toEdgeError(e);
  // A CAS conflict answers with the current object as JSON, as Nomad does.
  if (err.code === "CONFLICT" && err.detail !== undefined) {
    return c.json(err.detail, 409);
  }
  return c.text(err.message || "error", err.status as 400);
}
