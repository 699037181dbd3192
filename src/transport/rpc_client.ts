// The calling side of one RPC on a mux session: send the request header,
// await the reply (unary) or the open acknowledgement (streaming), with
// deadline and AbortSignal both resetting the stream so the server sees it.
import type { MuxSession } from "./mux_session.ts";
import type { MuxStream } from "./mux_stream.ts";
import { errorFromWire, RpcError } from "./rpc_error.ts";
import { DEFAULT_MAX_RPC_FRAME, encodeFrame, FrameReader } from "./rpc_frame.ts";
import { MuxRpcStream, type RpcStream } from "./rpc_stream.ts";
import { withDeadline } from "../lib/deadline.ts";

export interface CallOptions {
  /** Unary: the whole call. Streaming: opening only (header and acknowledgement), not the stream's life. */
  timeoutMs?: number;
  region?: string;
  authToken?: string;
  signal?: AbortSignal;
}

export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

function header(method: string, args: unknown, o: CallOptions, timeoutMs: number): Record<string, unknown> {
  const h: Record<string, unknown> = { Method: method, Timeout: timeoutMs };
  if (args !== undefined) h.Args = args;
  if (o.region !== undefined) h.Region = o.region;
  if (o.authToken !== undefined) h.AuthToken = o.authToken;
  return h;
}

/** Run `body` against a fresh stream, resetting it on deadline or abort. */
async function guarded<T>(
  session: MuxSession,
  method: string,
  o: CallOptions,
  body: (s: MuxStream, timeoutMs: number) => Promise<T>,
  _keepOpen: boolean,
): Promise<T> {
  if (o.signal?.aborted) throw new RpcError("CANCELLED", `${method}: cancelled`);
  const timeoutMs = Math.max(1, o.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
  let s: MuxStream;
  try {
    s = session.open();
  } catch (e) {
    throw new RpcError("UNAVAILABLE", `${method}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    // The open stream (keepOpen) registers its own abort listener; this one ends with the call.
    return await withDeadline(body(s, timeoutMs), timeoutMs, () => new RpcError("TIMEOUT", `${method}: no answer within ${timeoutMs} ms`), {
      signal: o.signal,
      cancelled: () => new RpcError("CANCELLED", `${method}: cancelled`),
    });
  } catch (e) {
    s.reset();
    throw e;
  }
}

export function callOnSession(
  session: MuxSession,
  method: string,
  args: unknown,
  o: CallOptions = {},
  maxFrame = DEFAULT_MAX_RPC_FRAME,
): Promise<unknown> {
  return guarded(
    session,
    method,
    o,
    async (s, timeoutMs) => {
      await s.write(encodeFrame(header(method, args, o, timeoutMs)));
      await s.closeWrite();
      const reply = await new FrameReader(s, maxFrame).next();
      return unwrapReply(method, reply);
    },
    false,
  );
}

/** Opens a streaming call; after it resolves, a caller's signal still aborts the stream. */
export async function openStreamOnSession(
  session: MuxSession,
  method: string,
  args: unknown,
  o: CallOptions = {},
  maxFrame = DEFAULT_MAX_RPC_FRAME,
): Promise<RpcStream> {
  return guarded(
    session,
    method,
    o,
    async (s, timeoutMs) => {
      await s.write(encodeFrame(header(method, args, o, timeoutMs)));
      const reader = new FrameReader(s, maxFrame);
      const ack = await reader.next();
      unwrapReply(method, ack);
      const stream = new MuxRpcStream(s, reader);
      o.signal?.addEventListener("abort", () => stream.abort("CANCELLED", "caller cancelled"), { once: true });
      return stream;
    },
    true,
  );
}

function unwrapReply(method: string, reply: unknown): unknown {
  if (reply === null) throw new RpcError("ABORTED", `${method}: server closed the stream without a reply`);
  if (typeof reply !== "object") throw new RpcError("RPC", `${method}: malformed reply`);
  const o = reply as Record<string, unknown>;
  if ("Error" in o && o.Error !== undefined && o.Error !== null) throw errorFromWire(o.Error);
  if (!("Reply" in o)) throw new RpcError("RPC", `${method}: malformed reply`);
  return o.Reply;
}
