// The endpoint table: every call the HTTP API (and a forwarded request) makes,
// with whether it must run on the leader and whether it is a read that may be
// served stale and may block, and what a call carries in (query options) and
// out (reply and query meta). Handlers run on the server that owns the answer.
import { z } from "zod";
import { parseDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Command } from "../state/commands.ts";
import type { TableName } from "../state/tables.ts";

export type Kind = "local" | "read" | "write";

export interface QueryOptions {
  region?: string;
  token?: string;
  /** Serve from this server's own state instead of the leader's (?stale). */
  stale?: boolean;
  /** Blocking query: return once the result's index is above this (?index=N). */
  minIndex?: number;
  /** Blocking query wait in ms (?wait=D), already clamped. */
  waitMs?: number;
}

export interface QueryMeta {
  index: number;
  knownLeader: boolean;
  lastContactMs: number;
  /** Entries committed on the answering server but not applied: set only while its apply is stopped (apply_stop.ts). */
  behind?: number;
}

export interface CallResult<T = unknown> {
  reply: T;
  meta?: QueryMeta;
}

export interface EndpointContext {
  q: QueryOptions;
  /** Propose a state command on the leader; resolves with its result. */
  propose(cmd: Command): Promise<unknown>;
  /** A blocking read: re-runs `run` until its index passes q.minIndex or the wait ends. */
  blocking<T>(table: TableName, key: string | undefined, run: () => { reply: T; index: number }): Promise<CallResult<T>>;
}

/**
 * One endpoint: `args` validates what a caller sends (the router parses with it before the handler
 * runs), and the handler's reply type is the one a typed call returns (server/backend.ts).
 */
export interface Endpoint<A extends z.ZodType = z.ZodType, R = unknown> {
  kind: Kind;
  args: A;
  // A method, so that a table of specific endpoints is still a Record<string, Endpoint> the router indexes.
  handler(args: z.output<A>, ctx: EndpointContext): Promise<CallResult<R>>;
}

/** An endpoint whose handler's arguments are typed by its schema. */
export function endpoint<A extends z.ZodType, R>(e: Endpoint<A, R>): Endpoint<A, R> {
  return e;
}

/** The reply of a call that answers nothing but success. */
export type Empty = Record<string, never>;

export function emptyReply(): CallResult<Empty> {
  return { reply: {} };
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
