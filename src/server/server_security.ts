// Who may talk to this server's RPC port and how this server dials others: the cluster key ring
// (`server.encrypt`, rotated on SIGHUP), TLS for the RPC port (`tls.rpc`), the refusal to start an
// unauthenticated port others can reach, and which methods a proven peer may call.
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { RefusalLog } from "../lib/refusal_log.ts";
import { ClusterKeys } from "../transport/cluster_keys.ts";
import type { PeerIdentity } from "../transport/peer_identity.ts";
import type { RpcServerOptions } from "../transport/rpc_server.ts";
import type { TlsOptions } from "../transport/tls_options.ts";
import type { Metrics } from "./metrics.ts";
import { CROSS_REGION_METHODS } from "./placement.ts";

/** How often `insecure_rpc` is warned about again. */
const INSECURE_WARNING_MS = 3_600_000;

/** What the security module needs from the server. */
export interface SecurityHost {
  readonly cfg: Config;
  readonly log: Logger;
  readonly stats: Metrics;
  logAt(level: string, msg: string): void;
  /** This server's raft id (known once start() read the stable store). */
  nodeId(): string;
  /** This region and the federated ones. */
  regions(): string[];
  /** Closes the RPC port's sessions whose peer `drop` picks; how many it closed (0 before the port listens). */
  dropSessions(drop: (peer: PeerIdentity) => boolean, reason: string): number;
}

export type DialSecurity =
  | { tls: TlsOptions }
  | { keyed: { keys: ClusterKeys; self: () => { id: string; region: string } } }
  | Record<string, never>;

export class ServerSecurity {
  /** The cluster key ring (`server.encrypt`); SIGHUP replaces its keys (reloadKeys). */
  private readonly keys: ClusterKeys | undefined;
  private rpcTlsCache: TlsOptions | undefined | null = null;
  private insecureWarning: ReturnType<typeof setInterval> | undefined;
  /** Server-only calls refused to unauthenticated sessions: logged at a bounded rate. */
  private readonly denials: RefusalLog;

  constructor(
    private readonly host: SecurityHost,
    private readonly insecureWarningMs = INSECURE_WARNING_MS,
  ) {
    if (host.cfg.server.encrypt.length > 0) this.keys = new ClusterKeys(host.cfg.server.encrypt);
    this.denials = new RefusalLog("rpc", (level, msg) => host.logAt(level, msg));
  }

  /** The RPC port's security: its listener's TLS or key ring, which methods a peer may call, and refusals counted. */
  rpcOptions(): Pick<RpcServerOptions, "tls" | "keyed" | "peerAllowed" | "onDenied"> {
    return {
      ...this.dialSecurity(),
      peerAllowed: (method, peer) => this.peerAllowed(method, peer),
      onDenied: (method, _peer, remote) => {
        this.host.stats.inc(
          "edgenode_rpc_denied_total",
          { method },
          1,
          "server-only RPC calls refused to a session that is not an authenticated server of this region",
        );
        this.denials.refuse(`denied ${method}`, remote);
      },
    };
  }

  /**
   * Whether every server-to-server call must come on an authenticated server session (cluster key
   * or a server certificate). False only with neither configured (`insecure_rpc`, -dev, loopback):
   * then server-only methods stay open, and raft is still checked for membership and cluster id.
   */
  get sessionsAuthenticated(): boolean {
    return this.keys !== undefined || this.host.cfg.tls.rpc;
  }

  /** TLS when tls.rpc (a certificate proves the server), else the cluster key when set. */
  dialSecurity(): DialSecurity {
    const tls = this.rpcTls();
    if (tls) return { tls };
    const cfg = this.host.cfg;
    if (this.keys) return { keyed: { keys: this.keys, self: () => ({ id: this.host.nodeId(), region: cfg.region }) } };
    return {};
  }

  /** SIGHUP: a new key list (rotation). Adding or removing the key altogether needs a restart. */
  reloadKeys(keys: readonly string[]): string {
    if (!this.keys && keys.length === 0) return "no cluster key configured";
    if (!this.keys || keys.length === 0)
      throw new EdgeError("BAD_REQUEST", "turning the cluster key on or off needs a restart of the server; the running key list is kept");
    const ring = this.keys;
    ring.set(keys);
    // A key taken out of the ring (the last step of a rotation, or a leaked key) stops being good at
    // once: sessions that proved it are closed, and their dialers open new ones with their first key.
    const dropped = this.host.dropSessions((p) => p.kind === "key" && !ring.holds(p.keyId), "cluster key removed from the ring");
    return `cluster key ring reloaded (${keys.length} key${keys.length === 1 ? "" : "s"}; new sessions dial with the first; ${dropped} session${dropped === 1 ? "" : "s"} of a removed key closed)`;
  }

  /**
   * Secure by default: an RPC port others can reach needs the cluster key or tls.rpc, or the
   * operator's explicit `insecure_rpc = true`, which is warned about at start and every hour.
   */
  checkRpcExposure(): void {
    if (this.sessionsAuthenticated) return;
    const cfg = this.host.cfg;
    const advertised = splitHost(cfg.advertise.rpc);
    const exposed = [cfg.bind_addr, advertised].filter((h) => !isLoopback(h));
    if (exposed.length === 0) return;
    const where = `bind_addr ${cfg.bind_addr}, advertise.rpc ${cfg.advertise.rpc}`;
    if (!cfg.server.insecure_rpc) {
      throw new EdgeError(
        "BAD_REQUEST",
        `the RPC port is reachable beyond this machine (${where}) but no server session would be authenticated: ` +
          'set server { encrypt = "<key>" } with a key from `node operator keygen` (the same on every server), or tls.rpc with server certificates; ' +
          "or, to run it open to anyone who can reach the port, server { insecure_rpc = true }",
      );
    }
    const warn = () =>
      this.host.log.warn(
        "insecure_rpc: the RPC port accepts unauthenticated server sessions; anyone who can reach it can join the cluster and write its log",
        { bind_addr: cfg.bind_addr, advertise_rpc: cfg.advertise.rpc },
      );
    warn();
    this.insecureWarning = setInterval(warn, this.insecureWarningMs);
    (this.insecureWarning as { unref?: () => void }).unref?.();
  }

  /** Whether a session that proved `peer` may call `method` (RpcServer.peerAllowed). */
  peerAllowed(method: string, peer: PeerIdentity): boolean {
    // Ping stays open to anyone: it is how operators and a Go yamux peer check the port.
    if (method === "Status.Ping") return true;
    if (!this.sessionsAuthenticated) return true;
    const own = this.host.cfg.region;
    const region = peerRegion(peer, own);
    if (region === undefined) return false;
    // A federated region's server may only forward requests here; raft, membership and staging calls
    // must come from this region's own servers.
    return region === own || CROSS_REGION_METHODS.has(method);
  }

  /** TLS for the RPC port when tls.rpc: mutual, and with verify_server_hostname the peer must be server.<region>.edgenode. */
  rpcTls(): TlsOptions | undefined {
    if (this.rpcTlsCache !== null) return this.rpcTlsCache;
    const cfg = this.host.cfg;
    const t = cfg.tls;
    if (!t.rpc) {
      this.rpcTlsCache = undefined;
      return undefined;
    }
    this.rpcTlsCache = {
      cert: readFileSync(t.cert_file, "utf8"),
      key: readFileSync(t.key_file, "utf8"),
      ca: readFileSync(t.ca_file, "utf8"),
      verifyIncoming: true,
      // Incoming connections come from servers too: they must prove a server name of a known region.
      ...(t.verify_server_hostname
        ? {
            serverName: `server.${cfg.region}.edgenode`,
            // A forward to another region dials one of its federation servers, which proves that region's name.
            serverNameFor: (addr: string) => {
              for (const [r, f] of Object.entries(cfg.federation ?? {})) if (f.servers.includes(addr)) return `server.${r}.edgenode`;
              return undefined;
            },
            // This region's name first: a certificate valid for it is taken as this region's server.
            peerNames: [cfg.region, ...this.host.regions().filter((r) => r !== cfg.region)].map((r) => `server.${r}.edgenode`),
          }
        : {}),
    };
    return this.rpcTlsCache;
  }

  stop(): void {
    if (this.insecureWarning) clearInterval(this.insecureWarning);
    this.denials.close();
  }
}

function splitHost(addr: string): string {
  const i = addr.lastIndexOf(":");
  const h = i > 0 && /^[0-9]+$/.test(addr.slice(i + 1)) ? addr.slice(0, i) : addr;
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The region a session proved it serves, or undefined when it proved no server identity. */
function peerRegion(peer: PeerIdentity, ownRegion: string): string | undefined {
  if (peer.kind === "key") return peer.region;
  if (peer.kind === "tls") {
    // verify_server_hostname = false: the operator takes any certificate of the CA for this region's server.
    if (peer.name === undefined) return ownRegion;
    const m = /^server\.([A-Za-z0-9_-]+)\.edgenode$/.exec(peer.name);
    return m?.[1];
  }
  return undefined;
}
