// The RPC listener: accepts mux sessions, reads each stream's CBOR request
// header, checks arguments with zod, and runs unary or streaming handlers
// with deadlines and cancellation. Answers Status.Ping itself.
import type { TCPSocketListener } from "bun";
import { z } from "zod";
import type { MuxSession, MuxOptions } from "./mux_session.ts";
import type { MuxStream } from "./mux_stream.ts";
import { errorToWire, RpcError } from "./rpc_error.ts";
import { EdgeError, hasCode } from "../lib/errors.ts";
import { deadlineTimer, withDeadline } from "../lib/deadline.ts";
import { DEFAULT_MAX_RPC_FRAME, encodeFrame, FrameReader } from "./rpc_frame.ts";
import { MuxRpcStream, type RpcStream } from "./rpc_stream.ts";
import { listenMux, type KeyedOptions } from "./tcp_wire.ts";
import { describePeer, type PeerIdentity } from "./peer_identity.ts";
import { MAX_RPC_HEADER_BYTES } from "../lib/limits.ts";
import { RefusalLog } from "../lib/refusal_log.ts";
import type { TlsOptions } from "./tls_options.ts";

export interface CallContext {
  method: string;
  /** Who the caller's session proved it is (cluster key, certificate, or nobody). */
  peer: PeerIdentity;
  region?: string;
  authToken?: string;
  remoteAddress: string;
  signal: AbortSignal;
}

export interface ServerInfo {
  ID: string;
  Name: string;
  Region: string;
  Version: string;
}

export interface RpcServerOptions {
  bindAddr: string;
  port: number;
  tls?: TlsOptions;
  maxConnsPerClient?: number;
  log?: (level: string, msg: string) => void;
  info: () => ServerInfo;
  mux?: MuxOptions;
  /** Time a new stream has to send its request header. */
  headerTimeoutMs?: number;
  /** Upper bound on a caller-supplied Timeout. */
  maxCallTimeoutMs?: number;
  maxFrameBytes?: number;
  /** Accept keyed sessions (preamble 0x02) proving this ring's keys. */
  keyed?: KeyedOptions;
  /**
   * Whether a caller whose session proved `peer` may call `method`, checked on every call before its
   * arguments; a refusal answers PERMISSION_DENIED and is told to `onDenied`. Unset: every method is open.
   */
  peerAllowed?: (method: string, peer: PeerIdentity) => boolean;
  onDenied?: (method: string, peer: PeerIdentity, remoteAddress: string) => void;
  /** Time a new connection has to send its first byte, and to complete its first mux frame (lib/limits.ts). */
  firstByteMs?: number;
  firstFrameMs?: number;
  /** Counts each connection a limit closed, by reason (for a metric); log lines are rate-bounded. */
  onRefused?: (reason: string) => void;
}

/** The request header every stream opens with (DESIGN § The internal wire). */
const RequestHeader = z.object({
  Method: z.string().min(1).max(256),
  Region: z.string().max(256).optional(),
  AuthToken: z.string().max(1024).optional(),
  Args: z.unknown().optional(),
  /** Milliseconds the caller will wait; the handler's signal aborts after it. */
  Timeout: z.number().int().positive().optional(),
});
type RequestHeader = z.infer<typeof RequestHeader>;

type Unary = { kind: "unary"; args: z.ZodType; handler: (args: unknown, ctx: CallContext) => Promise<unknown> };
type Streaming = { kind: "stream"; args: z.ZodType; handler: (args: unknown, ctx: CallContext, stream: RpcStream) => Promise<void> };

export class RpcServer {
  private readonly opts: RpcServerOptions;
  private readonly methods = new Map<string, Unary | Streaming>();
  private listener: TCPSocketListener<unknown> | null = null;
  private readonly sessions = new Set<MuxSession>();
  private readonly refusals: RefusalLog;
  private closing = false;

  constructor(opts: RpcServerOptions) {
    this.opts = opts;
    this.refusals = new RefusalLog("rpc", opts.log, opts.onRefused);
    this.unary("Status.Ping", z.unknown(), async () => this.opts.info());
  }

  unary<S extends z.ZodType>(method: string, args: S, handler: (args: z.infer<S>, ctx: CallContext) => Promise<unknown>): void {
    this.register(method, { kind: "unary", args, handler: handler as Unary["handler"] });
  }

  stream<S extends z.ZodType>(
    method: string,
    args: S,
    handler: (args: z.infer<S>, ctx: CallContext, stream: RpcStream) => Promise<void>,
  ): void {
    this.register(method, { kind: "stream", args, handler: handler as Streaming["handler"] });
  }

  private register(method: string, m: Unary | Streaming): void {
    if (method !== "Status.Ping" && this.methods.has(method)) throw new EdgeError("INTERNAL", `rpc method ${method} registered twice`);
    this.methods.set(method, m);
  }

  async listen(): Promise<{ port: number }> {
    if (this.listener) return { port: this.listener.port };
    this.listener = listenMux({
      hostname: this.opts.bindAddr,
      port: this.opts.port,
      log: this.opts.log,
      // Connections are counted from their first moment, silent ones included (not sessions or calls).
      maxConnsPerAddress: this.opts.maxConnsPerClient ?? 100,
      ...(this.opts.firstByteMs !== undefined ? { firstByteMs: this.opts.firstByteMs } : {}),
      ...(this.opts.firstFrameMs !== undefined ? { firstFrameMs: this.opts.firstFrameMs } : {}),
      refused: (reason, remote) => this.refusals.refuse(reason, remote),
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      ...(this.opts.keyed ? { keyed: this.opts.keyed } : {}),
      muxOptions: (remote) => ({
        ...this.opts.mux,
        log: this.opts.log,
        onStreamRefused: (reason) => this.refusals.refuse(reason, remote),
        onStream: (s) => void this.serveStream(s, remote),
      }),
      onSession: (session) => {
        if (this.closing) return false;
        this.sessions.add(session);
        this.watchClose(session);
        return true;
      },
    }) as TCPSocketListener<unknown>;
    return { port: this.listener.port };
  }

  /** GoAway to every session, stop accepting, close sessions once their streams finish (bounded). */
  async close(graceMs = 2_000): Promise<void> {
    this.closing = true;
    this.refusals.close();
    this.listener?.stop(true);
    this.listener = null;
    await Promise.all([...this.sessions].map((s) => s.shutdown(graceMs)));
  }

  /** Close every session whose proven identity `drop` selects (a key taken out of the ring); returns how many. */
  dropSessions(drop: (peer: PeerIdentity) => boolean, reason: string): number {
    let n = 0;
    for (const s of this.sessions) {
      if (s.closed || !drop(s.peer)) continue;
      s.close(reason);
      n++;
    }
    return n;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Connections closed by a limit since the start, by reason. */
  refusedCounts(): Record<string, number> {
    return this.refusals.counts();
  }

  private watchClose(session: MuxSession): void {
    const tick = setInterval(() => {
      if (!session.closed) return;
      clearInterval(tick);
      this.sessions.delete(session);
    }, 250);
    (tick as { unref?: () => void }).unref?.();
  }

  private async serveStream(s: MuxStream, remote: string): Promise<void> {
    const reader = new FrameReader(s, this.opts.maxFrameBytes ?? DEFAULT_MAX_RPC_FRAME);
    let header: RequestHeader;
    try {
      const raw = await withTimeout(
        reader.next(Math.min(MAX_RPC_HEADER_BYTES, this.opts.maxFrameBytes ?? DEFAULT_MAX_RPC_FRAME)),
        this.opts.headerTimeoutMs ?? 10_000,
      );
      const parsed = RequestHeader.safeParse(raw);
      if (!parsed.success) {
        await this.replyError(s, new RpcError("BAD_REQUEST", `malformed request header: ${parsed.error.message}`));
        return;
      }
      header = parsed.data;
    } catch (e) {
      // Garbage or silence instead of a header: refuse this stream, keep the session.
      if (e instanceof RpcError && !hasCode(e, "ABORTED")) await this.replyError(s, e);
      else s.reset();
      return;
    }
    const m = this.methods.get(header.Method);
    if (!m) {
      await this.replyError(s, new RpcError("NOT_FOUND", `unknown rpc method ${header.Method}`));
      return;
    }
    const peer = s.peer;
    if (this.opts.peerAllowed && !this.opts.peerAllowed(header.Method, peer)) {
      this.opts.onDenied?.(header.Method, peer, remote);
      await this.replyError(s, new RpcError("PERMISSION_DENIED", `${header.Method} is not open to ${describePeer(peer)}`));
      return;
    }
    const args = m.args.safeParse(header.Args);
    if (!args.success) {
      await this.replyError(s, new RpcError("BAD_REQUEST", `invalid arguments for ${header.Method}: ${args.error.message}`));
      return;
    }
    const ac = new AbortController();
    const maxTimeout = this.opts.maxCallTimeoutMs ?? 3_600_000;
    const timer =
      header.Timeout !== undefined
        ? deadlineTimer(Math.min(header.Timeout, maxTimeout), () => ac.abort(new RpcError("TIMEOUT", "deadline exceeded")))
        : undefined;
    const ctx: CallContext = { method: header.Method, peer, remoteAddress: remote, signal: ac.signal };
    if (header.Region !== undefined) ctx.region = header.Region;
    if (header.AuthToken !== undefined) ctx.authToken = header.AuthToken;
    try {
      if (m.kind === "unary") {
        // The caller half-closes after its header; a reset instead means it gave up.
        s.onFail(() => ac.abort(new RpcError("CANCELLED", "caller cancelled")));
        let reply: Uint8Array;
        try {
          const result = await m.handler(args.data, ctx);
          reply = encodeFrame({ Reply: result ?? null });
        } catch (e) {
          reply = encodeFrame({ Error: errorToWire(e) });
        }
        if (s.isReset) return;
        await s.write(reply);
        await s.closeWrite();
        return;
      }
      await s.write(encodeFrame({ Reply: null }));
      s.onFail(() => ac.abort(new RpcError("CANCELLED", "stream reset")));
      const stream = new MuxRpcStream(s, reader, () => ac.abort(new RpcError("CANCELLED", "stream finished")));
      try {
        await m.handler(args.data, ctx, stream);
        await stream.end();
      } catch (e) {
        const w = errorToWire(e);
        stream.abort(w.Code, w.Message);
      }
    } catch {
      s.reset();
    } finally {
      timer?.cancel();
    }
  }

  private async replyError(s: MuxStream, e: RpcError): Promise<void> {
    try {
      await s.write(encodeFrame({ Error: errorToWire(e) }));
      await s.closeWrite();
    } catch {
      s.reset();
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return withDeadline(p, ms, () => new RpcError("ABORTED", `no request header within ${ms} ms`));
}
