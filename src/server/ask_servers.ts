// Asking every server of the applied configuration the same question at once, for the views that show
// the cluster server by server (raft stats, snapshot history). Each answer is checked by a schema; a
// server that does not answer in time, cannot be reached or answers nonsense is shown with why, never
// left out and never read as an empty answer. This server answers itself without a round trip.
import type { z } from "zod";
import { toEdgeError } from "../lib/errors.ts";
import type { CallOptions } from "../transport/rpc_client.ts";
import type { Members } from "./members.ts";

/** How long one server may take to answer, by default (under a status page's refresh period). */
export const ASK_TIMEOUT_MS = 1_000;

/** What asking the servers needs from the server. */
export interface AskHost {
  readonly members: Members;
  nodeId(): string;
  call(address: string, method: string, args: unknown, opts: CallOptions): Promise<unknown>;
}

/** One server's answer: its reply, or the reason there is none. */
export interface ServerAnswer<T> {
  ID: string;
  Node: string;
  Address: string;
  reply?: T;
  error?: string;
}

/**
 * Asks each server of the configuration `method(args)`; `local` answers for this server. The answers
 * come in the configuration's order.
 */
export async function askEveryServer<T>(
  h: AskHost,
  method: string,
  args: unknown,
  schema: z.ZodType<T>,
  local: () => T | Promise<T>,
  timeoutMs = ASK_TIMEOUT_MS,
): Promise<ServerAnswer<T>[]> {
  const servers = h.members.config.servers;
  return Promise.all(
    servers.map(async (s): Promise<ServerAnswer<T>> => {
      const who = { ID: s.id, Node: h.members.names.get(s.id) ?? "", Address: s.address };
      try {
        if (s.id === h.nodeId()) return { ...who, reply: await local() };
        const parsed = schema.safeParse(await h.call(s.address, method, args, { timeoutMs }));
        if (!parsed.success) return { ...who, error: `an answer to ${method} that does not parse` };
        return { ...who, reply: parsed.data };
      } catch (e) {
        return { ...who, error: toEdgeError(e).message };
      }
    }),
  );
}
