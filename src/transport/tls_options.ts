// TLS settings for the RPC port (PEM strings): a server given them is
// TLS-only; a pool given them dials with the 0x04 preamble and its own certificate.
export interface TlsOptions {
  cert: string;
  key: string;
  /** CA bundle used to verify the peer. */
  ca?: string;
  /** Mutual TLS: require and verify a client certificate (`tls.rpc`). */
  verifyIncoming?: boolean;
  serverName?: string;
  /** Dial side: the name to check for a given address (another region's servers), else `serverName`. */
  serverNameFor?: (addr: string) => string | undefined;
  /**
   * Accept side: the client's certificate must be valid for one of these names (servers dial each
   * other, so a peer proves it is `server.<region>.edgenode` too). Unset: any certificate of the CA.
   * The first name the certificate is valid for is the peer's name in every call's context
   * (CallContext.peerName): list the local region's first.
   */
  peerNames?: string[];
}
