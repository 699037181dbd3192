// Bun TCP sockets as mux wires: the connection preamble byte, Nagle off, and
// socket events routed into a MuxSession (dial side and accept side).
import type { Socket, TCPSocketListener } from "bun";
import { encodeHeader, FrameType, GoAwayCode } from "./frame.ts";
import { MuxSession, type MuxOptions, type MuxWire } from "./mux_session.ts";
import { acceptTls, BunSocketDuplex } from "./tls_wire.ts";
import { DialError, Preamble, splitHostPort } from "./dial.ts";
import { release } from "../lib/release.ts";
import type { TlsOptions } from "./tls_options.ts";
import { RPC_FIRST_BYTE_MS, RPC_FIRST_FRAME_MS } from "../lib/limits.ts";
import type { ClusterKeys } from "./cluster_keys.ts";
import { KeyedAcceptor, KeyedDialer, type Self, type Step } from "./keyed_handshake.ts";
import { ANONYMOUS } from "./peer_identity.ts";
import { deadlineTimer, type DeadlineTimer, withDeadline } from "../lib/deadline.ts";

/** The cluster key ring and who this server is, for keyed sessions (both read at each session's opening). */
export interface KeyedOptions {
  keys: ClusterKeys;
  self: () => Self;
}

interface DialState {
  session: MuxSession | null;
  /** Fed the bytes read until the keyed handshake is over. */
  handshake: ((chunk: Uint8Array) => void) | null;
  /** Told when the connection ends during the handshake. */
  closedEarly: ((why: string) => void) | null;
}

/**
 * Connect, send the preamble, and run a client session on the socket. With `keyed` the preamble is
 * 0x02 and the session starts only once both ends proved the cluster key (within the same timeout).
 */
export async function dialMux(addr: string, muxOpts: MuxOptions, timeoutMs = 5_000, keyed?: KeyedOptions): Promise<MuxSession> {
  const { host, port } = splitHostPort(addr);
  const t0 = performance.now();
  const connecting = Bun.connect<DialState>({
    hostname: host,
    port,
    data: { session: null, handshake: null, closedEarly: null },
    socket: {
      data(s, chunk) {
        if (s.data.handshake) return s.data.handshake(chunk);
        s.data.session?.onData(chunk);
        releaseReceived(chunk);
      },
      drain(s) {
        s.data.session?.onDrain();
      },
      close(s) {
        s.data.closedEarly?.("connection closed by peer");
        s.data.session?.onWireClosed("connection closed by peer");
      },
      error(s, err) {
        s.data.closedEarly?.(`socket error: ${err.message}`);
        s.data.session?.onWireClosed(`socket error: ${err.message}`);
      },
    },
  });
  let socket: Socket<DialState>;
  try {
    socket = await withDeadline(connecting, timeoutMs, () => new DialError(`dial ${addr}: timed out after ${timeoutMs} ms`));
  } catch (e) {
    if (e instanceof DialError) {
      connecting.then(
        (s) => s.end(),
        () => {},
      );
      throw e;
    }
    throw new DialError(`dial ${addr}: ${e instanceof Error ? e.message : String(e)}`);
  }
  socket.setNoDelay(true);
  if (!keyed) {
    if (socket.write(Uint8Array.of(Preamble.Mux)) !== 1) {
      socket.end();
      throw new DialError(`dial ${addr}: could not send the preamble`);
    }
    const session = new MuxSession(socketWire(socket), true, muxOpts);
    socket.data.session = session;
    return session;
  }
  return dialKeyed(socket, addr, keyed, Math.max(1, timeoutMs - (performance.now() - t0)), (peer, rest) => {
    const session = new MuxSession(socketWire(socket), true, muxOpts);
    session.peer = peer;
    socket.data.session = session;
    if (rest.length > 0) session.onData(rest.slice());
    return session;
  });
}

/**
 * Run the dialling side of the keyed handshake on a connected socket. The session is started inside
 * the read that finished the handshake, so no byte the acceptor sends right after it can be missed.
 */
function dialKeyed(
  socket: Socket<DialState>,
  addr: string,
  keyed: KeyedOptions,
  timeoutMs: number,
  start: (peer: MuxSession["peer"], rest: Uint8Array) => MuxSession,
): Promise<MuxSession> {
  const d = new KeyedDialer(keyed.keys, keyed.self());
  const detach = () => {
    socket.data.handshake = null;
    socket.data.closedEarly = null;
  };
  const handshake = new Promise<MuxSession>((resolve, reject) => {
    const fail = (why: string) => reject(new DialError(`dial ${addr}: ${why}`));
    socket.data.closedEarly = (why) => fail(`cluster-key handshake: ${why}`);
    socket.data.handshake = (chunk) => {
      const step = d.feed(chunk);
      if (step.send) writeAll(socket, step.send);
      if (step.fail !== undefined) return fail(`cluster-key handshake failed: ${step.fail}`);
      if (step.done) {
        detach();
        resolve(start(step.done.peer, step.done.rest));
      }
    };
    const hello = d.hello();
    const first = new Uint8Array(1 + hello.length);
    first[0] = Preamble.Keyed;
    first.set(hello, 1);
    writeAll(socket, first);
  });
  const timedOut = () => new DialError(`dial ${addr}: cluster-key handshake timed out after ${Math.round(timeoutMs)} ms`);
  return withDeadline(handshake, timeoutMs, timedOut).catch((e: unknown) => {
    detach();
    socket.end();
    throw e;
  });
}

/**
 * Handshake messages are a few hundred bytes on a fresh socket, far below its send buffer; a short
 * write means the socket is gone, which the close handler reports.
 */
function writeAll(socket: Socket<unknown>, b: Uint8Array): void {
  const n = socket.write(b);
  if (n !== b.length) socket.end();
}

/**
 * Bun hands each read to the data callback in a buffer of its own (a fresh ArrayBuffer per
 * read) and keeps no reference; the session copies what it keeps (MuxSession.parse). So the buffer is
 * released once the session has parsed it, and the next read reuses its memory (lib/release.ts).
 */
function releaseReceived(chunk: Uint8Array): void {
  release(chunk);
}

export function socketWire(socket: Socket<unknown>): MuxWire {
  return {
    write: (b) => socket.write(b),
    end: () => socket.end(),
    // Bun's socket.write has no userland buffer: what it accepts is already copied.
    copiesOnWrite: true,
  };
}

interface AcceptState {
  session: MuxSession | null;
  refused: boolean;
  tls: BunSocketDuplex | null;
  /** The session behind TLS, for the first-frame deadline (its bytes go through `tls`). */
  tlsSession: MuxSession | null;
  /** The address this connection is counted under, once counted. */
  counted: string | null;
  deadline: DeadlineTimer | null;
  /** Between the 0x02 preamble and the end of the cluster-key handshake. */
  keyed: KeyedAcceptor | null;
}

export interface MuxListenerOptions {
  hostname: string;
  port: number;
  muxOptions: (remoteAddress: string) => MuxOptions;
  /** Called for each new session; returning false closes the connection (e.g. per-client limits). */
  onSession: (session: MuxSession, remoteAddress: string) => boolean;
  log?: (level: string, msg: string) => void;
  /** When set the port is TLS-only: 0x04 then a handshake; a plaintext 0x01 gets GoAway(protocol error). */
  tls?: TlsOptions;
  /** When set, 0x02 opens a keyed session; a plaintext 0x01 session is still accepted, anonymous. */
  keyed?: KeyedOptions;
  /** Open connections allowed from one address; the next is closed at once. */
  maxConnsPerAddress?: number;
  /** Time a connection has to send its first byte. */
  firstByteMs?: number;
  /** Time a connection has to complete its first mux frame header (after any TLS handshake). */
  firstFrameMs?: number;
  /**
   * Told of each connection refused, with a reason ("conn_limit", "first_byte_timeout", "first_frame_timeout",
   * "unknown_preamble", "tls_not_enabled", "plaintext_on_tls_port", "tls_handshake_failed", "key_not_enabled",
   * "key_handshake_failed", "key_handshake_timeout"), in place of a
   * log line each.
   */
  refused?: (reason: string, remoteAddress: string) => void;
}

/** Listen for mux connections: read the preamble byte, then hand the socket to a server session. */
export function listenMux(o: MuxListenerOptions): TCPSocketListener<AcceptState> {
  const perAddress = new Map<string, number>();
  const maxConns = o.maxConnsPerAddress ?? Infinity;
  const firstByteMs = o.firstByteMs ?? RPC_FIRST_BYTE_MS;
  const firstFrameMs = o.firstFrameMs ?? RPC_FIRST_FRAME_MS;
  const refuse = (s: Socket<AcceptState>, reason: string) => {
    o.refused?.(reason, s.remoteAddress);
    s.data.refused = true;
    const session = s.data.session ?? s.data.tlsSession;
    if (session) session.close(reason);
    s.end();
  };
  const uncount = (s: Socket<AcceptState>) => {
    s.data.deadline?.cancel();
    s.data.deadline = null;
    const addr = s.data.counted;
    if (addr === null) return;
    s.data.counted = null;
    const n = (perAddress.get(addr) ?? 1) - 1;
    if (n <= 0) perAddress.delete(addr);
    else perAddress.set(addr, n);
  };
  const startSession = (s: Socket<AcceptState>, peer: MuxSession["peer"], rest: Uint8Array) => {
    const session = new MuxSession(socketWire(s), false, o.muxOptions(s.remoteAddress));
    session.peer = peer;
    s.data.session = session;
    if (!o.onSession(session, s.remoteAddress)) {
      session.close("refused");
      return;
    }
    if (rest.length > 0) session.onData(rest);
  };
  const acceptKeyedStep = (s: Socket<AcceptState>, step: Step) => {
    if (step.send) writeAll(s as Socket<unknown>, step.send);
    if (step.fail !== undefined) {
      if (o.refused) o.refused("key_handshake_failed", s.remoteAddress);
      else o.log?.("warn", `refusing connection from ${s.remoteAddress}: ${step.fail}`);
      s.data.refused = true;
      s.end();
      return;
    }
    if (step.done) {
      s.data.keyed = null;
      startSession(s, step.done.peer, step.done.rest.slice());
    }
  };
  return Bun.listen<AcceptState>({
    hostname: o.hostname,
    port: o.port,
    data: { session: null, refused: false, tls: null, tlsSession: null, counted: null, deadline: null, keyed: null },
    socket: {
      open(s) {
        s.data = { session: null, refused: false, tls: null, tlsSession: null, counted: null, deadline: null, keyed: null };
        s.setNoDelay(true);
        const addr = s.remoteAddress;
        const n = perAddress.get(addr) ?? 0;
        if (n >= maxConns) return refuse(s, "conn_limit");
        perAddress.set(addr, n + 1);
        s.data.counted = addr;
        // Silence is bounded twice: no first byte, then no first whole frame header (a trickle of bytes
        // or a TLS handshake that never ends).
        s.data.deadline = deadlineTimer(firstByteMs, () => {
          if (s.data.refused || s.data.counted === null) return;
          if (s.data.session === null && s.data.tls === null && s.data.keyed === null) return refuse(s, "first_byte_timeout");
          s.data.deadline = deadlineTimer(Math.max(0, firstFrameMs - firstByteMs), () => {
            const session = s.data.session ?? s.data.tlsSession;
            if (s.data.refused || s.data.counted === null) return;
            if (session === null && s.data.keyed !== null) return refuse(s, "key_handshake_timeout");
            if (session === null || session.headersReceived === 0) refuse(s, "first_frame_timeout");
          });
        });
      },
      data(s, chunk) {
        if (s.data.tls) return s.data.tls.feed(chunk);
        if (s.data.session) {
          s.data.session.onData(chunk);
          releaseReceived(chunk);
          return;
        }
        if (s.data.refused) return;
        if (s.data.keyed) return acceptKeyedStep(s, s.data.keyed.feed(chunk));
        const first = chunk[0];
        const remote = s.remoteAddress;
        if (o.keyed && first === Preamble.Keyed && !o.tls) {
          s.data.keyed = new KeyedAcceptor(o.keyed.keys, o.keyed.self());
          if (chunk.length > 1) acceptKeyedStep(s, s.data.keyed.feed(chunk.subarray(1)));
          return;
        }
        if (o.tls && first === Preamble.Tls) {
          const duplex = new BunSocketDuplex(s as Socket<unknown>);
          s.data.tls = duplex;
          acceptTls(duplex, o.tls, o.muxOptions(remote), (session, why) => {
            if (!session) {
              if (o.refused) o.refused("tls_handshake_failed", remote);
              else o.log?.("warn", `refusing TLS connection from ${remote}: ${why}`);
              s.end();
              return;
            }
            s.data.tlsSession = session;
            if (!o.onSession(session, remote)) session.close("refused");
          });
          if (chunk.length > 1) duplex.feed(chunk.subarray(1));
          return;
        }
        if (o.tls && first === Preamble.Mux) {
          // Refuse in the mux's own words, so a plaintext yamux client sees why and stops.
          if (o.refused) o.refused("plaintext_on_tls_port", remote);
          else o.log?.("warn", `refusing plaintext connection from ${remote}: this server requires TLS`);
          s.data.refused = true;
          s.write(encodeHeader(FrameType.GoAway, 0, 0, GoAwayCode.ProtocolError));
          s.end();
          return;
        }
        if (first !== Preamble.Mux) {
          if (o.refused)
            o.refused(
              first === Preamble.Tls ? "tls_not_enabled" : first === Preamble.Keyed ? "key_not_enabled" : "unknown_preamble",
              remote,
            );
          else
            o.log?.(
              "warn",
              `refusing connection from ${s.remoteAddress}: preamble 0x${(first ?? 0).toString(16)} (${first === Preamble.Tls ? "TLS is not enabled on this server" : "unknown protocol"})`,
            );
          s.data.refused = true;
          s.end();
          return;
        }
        startSession(s, ANONYMOUS, chunk.subarray(1));
      },
      drain(s) {
        s.data.tls?.drained();
        if (!s.data.tls) s.data.session?.onDrain();
      },
      close(s) {
        uncount(s);
        s.data.tls?.ended();
        if (!s.data.tls) s.data.session?.onWireClosed("connection closed by peer");
      },
      error(s, err) {
        uncount(s);
        s.data.tls?.destroy(err);
        o.log?.("warn", `socket error from ${s.remoteAddress}: ${err.message}`);
        s.data.session?.onWireClosed(`socket error: ${err.message}`);
      },
    },
  });
}
