// One mux session per peer address, dialled lazily and shared by every
// caller; a failed dial backs off with jitter; a session that closes (GoAway,
// keepalive failure, socket error) or says GoAway is replaced on next use.
import type { MuxOptions, MuxSession } from "./mux_session.ts";
import { RpcError } from "./rpc_error.ts";
import { callOnSession, openStreamOnSession, type CallOptions } from "./rpc_client.ts";
import type { RpcStream } from "./rpc_stream.ts";
import { dialMux, type KeyedOptions } from "./tcp_wire.ts";
import { dialTls } from "./tls_wire.ts";
import type { TlsOptions } from "./tls_options.ts";

export interface ConnPoolOptions {
  tls?: TlsOptions;
  /** Without TLS: open every session with the cluster-key handshake (preamble 0x02). */
  keyed?: KeyedOptions;
  log?: (level: string, msg: string) => void;
  dialTimeoutMs?: number;
  mux?: MuxOptions;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
}

interface Peer {
  session: MuxSession | null;
  dialing: Promise<MuxSession> | null;
  failures: number;
  retryAt: number;
  lastError: string;
}

export class ConnPool {
  private readonly opts: ConnPoolOptions;
  private readonly peers = new Map<string, Peer>();
  private closed = false;

  constructor(opts: ConnPoolOptions = {}) {
    this.opts = opts;
  }

  async call(addr: string, method: string, args: unknown, opts: CallOptions = {}): Promise<unknown> {
    const session = await this.session(addr);
    return callOnSession(session, method, args, opts);
  }

  async openStream(addr: string, method: string, args: unknown, opts: CallOptions = {}): Promise<RpcStream> {
    const session = await this.session(addr);
    return openStreamOnSession(session, method, args, opts);
  }

  /** Round trip of a mux ping to `addr`, in ms. */
  async ping(addr: string): Promise<number> {
    return (await this.session(addr)).ping();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.peers.values()];
    this.peers.clear();
    for (const p of all) p.session?.close("pool closed");
    await Promise.all(
      all.map((p) =>
        p.dialing?.then(
          (s) => s.close("pool closed"),
          () => {},
        ),
      ),
    );
  }

  /** The live session for addr, dialling if needed. */
  async session(addr: string): Promise<MuxSession> {
    if (this.closed) throw new RpcError("UNAVAILABLE", "connection pool is closed");
    let p = this.peers.get(addr);
    if (!p) {
      p = { session: null, dialing: null, failures: 0, retryAt: 0, lastError: "" };
      this.peers.set(addr, p);
    }
    if (p.session && !p.session.closed && !p.session.goingAway) return p.session;
    if (p.session) {
      const old = p.session;
      p.session = null;
      // A session the server said GoAway on finishes its streams, then closes.
      if (!old.closed) void old.shutdown(60_000);
    }
    if (p.dialing) return p.dialing;
    const now = performance.now();
    if (now < p.retryAt) {
      throw new RpcError("UNAVAILABLE", `${addr}: backing off for ${Math.ceil(p.retryAt - now)} ms after dial failure: ${p.lastError}`);
    }
    const peer = p;
    const muxOpts = { ...this.opts.mux, log: this.opts.log };
    const dialTimeout = this.opts.dialTimeoutMs ?? 5_000;
    const dialing = this.opts.tls
      ? dialTls(addr, this.opts.tls, muxOpts, dialTimeout)
      : dialMux(addr, muxOpts, dialTimeout, this.opts.keyed);
    peer.dialing = dialing.then(
      (s) => {
        peer.dialing = null;
        peer.failures = 0;
        if (this.closed) {
          s.close("pool closed");
          throw new RpcError("UNAVAILABLE", "connection pool is closed");
        }
        peer.session = s;
        return s;
      },
      (e: unknown) => {
        peer.dialing = null;
        peer.failures++;
        peer.lastError = e instanceof Error ? e.message : String(e);
        peer.retryAt = performance.now() + this.backoff(peer.failures);
        this.opts.log?.("warn", `dial ${addr} failed (${peer.failures} in a row): ${peer.lastError}`);
        throw new RpcError("UNAVAILABLE", peer.lastError);
      },
    );
    return peer.dialing;
  }

  /** Full-jitter exponential backoff: uniform in [d/2, d], d = base·2^(n−1) capped. */
  private backoff(failures: number): number {
    const base = this.opts.backoffBaseMs ?? 50;
    const max = this.opts.backoffMaxMs ?? 5_000;
    const d = Math.min(max, base * 2 ** Math.min(failures - 1, 20));
    return d / 2 + (this.opts.random ?? Math.random)() * (d / 2);
  }
}
