// What every dialer of the internal wire shares, in the clear or over TLS: the first byte of a
// connection, the host:port it parses, and the error a failed dial is.

import { TransportError } from "./transport_error.ts";

/** First byte of a connection (DESIGN § The internal wire): 0x02 opens with the cluster-key handshake. */
export const Preamble = { Mux: 0x01, Keyed: 0x02, Tls: 0x04 } as const;

export class DialError extends TransportError {
  constructor(message: string) {
    super("DIAL", message);
    this.name = "DialError";
  }
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new DialError(`bad address "${addr}": expected host:port`);
  let host = addr.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host, port };
}
