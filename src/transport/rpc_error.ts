// The error an RPC caller sees: a code from the one table (remote EdgeError codes pass through
// unchanged, plus transport codes such as TIMEOUT, UNAVAILABLE, ABORTED) and a message.
import { EdgeError, type ErrorCode, isErrorCode, toEdgeError } from "../lib/errors.ts";

export class RpcError extends EdgeError {
  constructor(code: ErrorCode, message: string, detail?: unknown) {
    super(code, message, detail);
    this.name = "RpcError";
  }
}

const MAX_MESSAGE = 4096;

/** The {Code, Message} an error travels as. */
export function errorToWire(e: unknown): { Code: ErrorCode; Message: string; Detail?: unknown } {
  const zod = e instanceof Error && e.name === "ZodError";
  const err = zod ? new EdgeError("BAD_REQUEST", e.message) : toEdgeError(e);
  const code = err.code;
  let message = err.message;
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  const detail = err.detail;
  return detail === undefined ? { Code: code, Message: message } : { Code: code, Message: message, Detail: detail };
}

/** Read {Code, Message} off the wire, tolerating a malformed peer: a code outside the table arrives as RPC. */
export function errorFromWire(v: unknown): RpcError {
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const code = isErrorCode(o.Code) ? o.Code : "RPC";
    const message = typeof o.Message === "string" ? o.Message.slice(0, MAX_MESSAGE) : "remote error";
    return new RpcError(code, message, o.Detail);
  }
  return new RpcError("RPC", "malformed error from peer");
}
