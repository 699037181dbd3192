// Parses a bounded JSON request body against a zod schema, with a 400 that says what is wrong.
import type { Context } from "hono";
import type { z } from "zod";
import { EdgeError } from "../lib/errors.ts";

export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  let raw: unknown;
  if (text.trim() === "") raw = {};
  else {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new EdgeError("BAD_REQUEST", `invalid JSON body: ${(e as Error).message}`);
    }
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "body";
    throw new EdgeError("BAD_REQUEST", `invalid request body: ${where}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}
