// TLS settings for the RPC port (PEM strings). The 0x04 preamble upgrade is
// not implemented yet: servers and pools given TlsOptions refuse to start.
export interface TlsOptions {
  cert: string;
  key: string;
  /** CA bundle used to verify the peer. */
  ca?: string;
  /** Mutual TLS: require and verify a client certificate (`tls.rpc`). */
  verifyIncoming?: boolean;
  serverName?: string;
}
