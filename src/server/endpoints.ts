// The endpoint table: every call the HTTP API (and a forwarded request) makes,
// with whether it must run on the leader and whether it is a read that may be
// served stale and may block. Handlers run on the server that owns the answer.
import { z } from "zod";
import { parseDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { CallResult, QueryOptions } from "./backend.ts";
import type { Command } from "../state/commands.ts";
import type { TableName } from "../state/tables.ts";

export type Kind = "local" | "read" | "write";

export interface EndpointContext {
  q: QueryOptions;
  /** Propose a state command on the leader; resolves with its result. */
  propose(cmd: Command): Promise<unknown>;
  /** A blocking read: re-runs `run` until its index passes q.minIndex or the wait ends. */
  blocking<T>(table: TableName, key: string | undefined, run: () => { reply: T; index: number }): Promise<CallResult<T>>;
}

export interface Endpoint {
  kind: Kind;
  args: z.ZodType;
  handler(args: never, ctx: EndpointContext): Promise<CallResult>;
}

export function durationArg(v: string | undefined, def: number, what: string): number {
  if (v === undefined || v === "") return def;
  try {
    return parseDuration(v);
  } catch (e) {
    throw new EdgeError("BAD_REQUEST", `invalid ${what}: ${(e as Error).message}`);
  }
}

export const items = z.record(z.string(), z.string());
export const path = z.string().min(1).max(1024);
