// The transport's own failures keep a reason of their own (what the multiplexer or the dialer saw) and
// carry the table code that reason means to a caller; `transportCode` is the one place that maps them.
import { EdgeError, type ErrorCode } from "../lib/errors.ts";

/** What went wrong inside the transport, finer than a caller needs. */
export type TransportReason = "RESET" | "WRITE_CLOSED" | "SESSION_CLOSED" | "PROTOCOL_ERROR" | "HANDSHAKE" | "DIAL";

/** The table code each transport reason crosses the boundary as. */
export function transportCode(reason: TransportReason): ErrorCode {
  switch (reason) {
    case "RESET":
    case "WRITE_CLOSED":
      return "ABORTED";
    case "SESSION_CLOSED":
      return "DISCONNECTED";
    case "PROTOCOL_ERROR":
      return "RPC";
    case "HANDSHAKE":
    case "DIAL":
      return "UNAVAILABLE";
  }
}

export class TransportError extends EdgeError {
  readonly reason: TransportReason;
  constructor(reason: TransportReason, message: string) {
    super(transportCode(reason), message);
    this.name = "TransportError";
    this.reason = reason;
  }
}
