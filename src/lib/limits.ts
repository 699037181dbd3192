// The bounds on what one peer or client can make this process hold or do that SPEC §2 has no key
// for: wire decoding, and how long a connection may sit silent. Configurable bounds live in config/.

/** Deepest nesting of arrays and maps the decoder accepts (state rows and RPC arguments are a few levels). */
export const MAX_CBOR_DEPTH = 64;

/** Largest RPC request header; data frames have their own, larger, limit (transport/rpc_frame.ts). */
export const MAX_RPC_HEADER_BYTES = 64 * 1024;

/** Time a new RPC connection has to send its first byte (the protocol preamble). */
export const RPC_FIRST_BYTE_MS = 10_000;

/** Time an accepted TLS connection has, from its 0x04 preamble, to finish the handshake and send a byte inside it. */
export const TLS_HANDSHAKE_MS = 10_000;

/** Time a new RPC connection has to complete its first mux frame (after a TLS handshake, if any). */
export const RPC_FIRST_FRAME_MS = 20_000;

/**
 * Seconds an HTTP connection may sit with nothing read or written, keep-alive included. Blocking
 * queries and snapshot transfers lift it for their own request (http/serve.ts).
 */
export const HTTP_IDLE_TIMEOUT_S = 60;

/** Time a new HTTP connection has to send its first whole request head, from its accept (a TLS handshake included). */
export const HTTP_FIRST_REQUEST_MS = 10_000;

/** Largest HTTP request head (request line and headers); a larger one is answered 431 and closed. */
export const HTTP_MAX_HEAD_BYTES = 64 * 1024;

/** Time a request body may go without a byte arriving before the request is cut. */
export const BODY_IDLE_MS = 30_000;

/** At most one log line per this interval for each kind of refused connection; the line carries counts. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;
