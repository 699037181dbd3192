// Who is at the other end of an RPC session, as its opening proved it: a server holding the
// cluster key (and which one it said it is, bound into the handshake's MAC), a TLS certificate's
// server name, or nobody in particular.

export type PeerIdentity =
  | { readonly kind: "none" }
  /**
   * Proved the cluster key whose id (hex) is `keyId`; `serverId` and `region` are inside the
   * handshake's MACs.
   */
  | { readonly kind: "key"; readonly serverId: string; readonly region: string; readonly keyId: string }
  /**
   * A certificate of the cluster's CA. `name`: the first server name it is valid for
   * (`server.<region>.edgenode`), when the listener checks names; unset when it does not
   * (verify_server_hostname = false: the operator takes any certificate of the CA for a server).
   */
  | { readonly kind: "tls"; readonly name?: string };

export const ANONYMOUS: PeerIdentity = { kind: "none" };

export function describePeer(p: PeerIdentity): string {
  if (p.kind === "key") return `server ${p.serverId} (cluster key, region ${p.region})`;
  if (p.kind === "tls") return p.name !== undefined ? `${p.name} (certificate)` : "a certificate of the cluster's CA";
  return "an unauthenticated session";
}
