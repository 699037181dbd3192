// The error an RPC caller sees: a code (remote EdgeError codes pass through
// unchanged, plus transport codes such as TIMEOUT, UNAVAILABLE, ABORTED) and a message.
import { EdgeError } from "../lib/errors.ts";

export class RpcError extends Error {
  readonly code: string;
  /** Structured detail of a remote EdgeError (e.g. the current variable on a CAS conflict). */
  readonly detail: unknown;
  constructor(code: string, message: string, detail?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.detail = detail;
  }
}

const MAX_MESSAGE = 4096;

/** The {Code, Message} an error travels as. */
export function errorToWire(e: unknown): { Code: string; Message: string; Detail?: unknown } {
  let code = "INTERNAL";
  let message = e instanceof Error ? e.message : String(e);
  if (e instanceof EdgeError || e instanceof RpcError) code = e.code;
  else if (e instanceof Error && e.name === "ZodError") code = "BAD_REQUEST";
  else if (e && typeof e === "object" && "code" in e && typeof e.code === "string" && /^[A-Z_]{1,64}$/.test(e.code)) code = e.code;
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  const detail = e instanceof EdgeError || e instanceof RpcError ? e.detail : undefined;
  return detail === undefined ? { Code: code, Message: message } : { Code: code, Message: message, Detail: detail };
}

/** Read {Code, Message} off the wire, tolerating a malformed peer. */
export function errorFromWire(v: unknown): RpcError {
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const code = typeof o.Code === "string" && o.Code.length > 0 && o.Code.length <= 64 ? o.Code : "RPC";
    const message = typeof o.Message === "string" ? o.Message.slice(0, MAX_MESSAGE) : "remote error";
    return new RpcError(code, message, o.Detail);
  }
  return new RpcError("RPC", "malformed error from peer");
}
