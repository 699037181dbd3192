// TLS on the RPC port: after the 0x04 preamble byte a TLS handshake runs on
// the same socket (node:tls over a Duplex shim of the Bun socket, since Bun's
// own TLS cannot start mid-stream on the accept side); inside it the first
// byte is again 0x01, then the mux session runs over the TLS stream.
import type { Socket } from "bun";
import * as net from "node:net";
import { Duplex } from "node:stream";
import * as tls from "node:tls";
import { MuxSession, type MuxOptions, type MuxWire } from "./mux_session.ts";
import { DialError, Preamble, splitHostPort } from "./dial.ts";
import type { TlsOptions } from "./tls_options.ts";
import { deadlineTimer, withDeadline } from "../lib/deadline.ts";
import { TLS_HANDSHAKE_MS } from "../lib/limits.ts";

/** A mux wire over a node stream: refuse bytes while the stream wants a drain, so buffering stays bounded. */
function streamWire(t: tls.TLSSocket): MuxWire {
  return {
    write(b) {
      if (t.destroyed || t.writableEnded) return -1;
      if (t.writableNeedDrain) return 0;
      t.write(b);
      return b.length;
    },
    end() {
      t.end();
    },
  };
}

function attach(t: tls.TLSSocket, session: MuxSession, first: Uint8Array | null): void {
  t.on("drain", () => session.onDrain());
  t.on("data", (d: Uint8Array) => session.onData(d));
  t.on("close", () => session.onWireClosed("TLS connection closed"));
  t.on("error", (e) => session.onWireClosed(`TLS error: ${e.message}`));
  if (first && first.length > 0) session.onData(first);
}

/** Bridge from a Bun socket to a node Duplex, with a write-all path that honours partial writes. */
export class BunSocketDuplex extends Duplex {
  private pending: { buf: Uint8Array; cb: (e?: Error | null) => void } | null = null;
  constructor(private readonly sock: Socket<unknown>) {
    super();
  }
  /** Called from the Bun socket's data handler. */
  feed(d: Uint8Array): void {
    this.push(d.slice());
  }
  /** Called from the Bun socket's drain handler. */
  drained(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.writeAll(p.buf, p.cb);
  }
  ended(): void {
    this.push(null);
  }
  override _read(): void {}
  override _write(chunk: Uint8Array, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.writeAll(chunk, cb);
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.sock.end();
    cb();
  }
  private writeAll(buf: Uint8Array, cb: (e?: Error | null) => void): void {
    const n = this.sock.write(buf);
    if (n < 0) {
      cb(new Error("socket closed"));
      return;
    }
    if (n === buf.length) {
      cb();
      return;
    }
    this.pending = { buf: buf.subarray(n), cb };
  }
}

/** The first of `names` the client's certificate is valid for, or why none is. */
function peerName(t: tls.TLSSocket, names: string[] | undefined): { name?: string; problem?: string } {
  if (names === undefined) return {};
  const cert = t.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { problem: "the client sent no certificate" };
  for (const n of names) if (tls.checkServerIdentity(n, cert) === undefined) return { name: n };
  return {
    problem: `the client's certificate is not valid for ${names.join(" or ")} (subject ${cert.subject?.CN ?? "?"}, SAN ${cert.subjectaltname ?? "none"})`,
  };
}

/** Server side: run the TLS handshake over `duplex`, then expect 0x01 and start a session. */
export function acceptTls(
  duplex: Duplex,
  o: TlsOptions,
  muxOpts: MuxOptions,
  onSession: (s: MuxSession | null, why?: string) => void,
): void {
  const t = new tls.TLSSocket(duplex as unknown as net.Socket, {
    isServer: true,
    key: o.key,
    cert: o.cert,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    requestCert: o.verifyIncoming === true,
    rejectUnauthorized: o.verifyIncoming === true,
  });
  let started = false;
  const timer = deadlineTimer(TLS_HANDSHAKE_MS, () => {
    if (started) return;
    started = true;
    t.destroy();
    onSession(null, "TLS handshake timeout");
  });
  t.on("error", (e) => {
    if (started) return;
    started = true;
    timer.cancel();
    onSession(null, `TLS handshake failed: ${e.message}`);
  });
  t.once("data", (d: Uint8Array) => {
    if (started) return;
    started = true;
    timer.cancel();
    const peer = peerName(t, o.peerNames);
    if (peer.problem !== undefined) {
      t.destroy();
      onSession(null, peer.problem);
      return;
    }
    if (d[0] !== Preamble.Mux) {
      t.destroy();
      onSession(null, `unknown protocol byte 0x${(d[0] ?? 0).toString(16)} inside TLS`);
      return;
    }
    const session = new MuxSession(streamWire(t), false, muxOpts);
    session.peer = peer.name !== undefined ? { kind: "tls", name: peer.name } : { kind: "tls" };
    onSession(session);
    attach(t, session, d.subarray(1));
  });
}

/** Client side: preamble 0x04, TLS handshake (client cert when given), then 0x01 and a client session. */
export async function dialTls(addr: string, o: TlsOptions, muxOpts: MuxOptions, timeoutMs = 5_000): Promise<MuxSession> {
  const { host, port } = splitHostPort(addr);
  const raw = net.connect({ host, port, noDelay: true });
  let gaveUp = false;
  const connected = new Promise<MuxSession>((resolve, reject) => {
    const fail = (why: string) => reject(new DialError(`dial ${addr} (TLS): ${why}`));
    raw.on("error", (e) => fail(e.message));
    const expected = o.serverNameFor?.(addr) ?? o.serverName;
    raw.once("connect", () => {
      raw.write(Uint8Array.of(Preamble.Tls));
      const servername = expected ?? (net.isIP(host) ? undefined : host);
      const t = tls.connect({
        socket: raw,
        cert: o.cert,
        key: o.key,
        ...(o.ca !== undefined ? { ca: o.ca } : {}),
        ...(servername !== undefined ? { servername } : {}),
        // Dialled by IP with a configured name: check the certificate against the name, not the IP.
        ...(expected !== undefined
          ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(expected, cert) }
          : {}),
      });
      t.on("error", (e) => fail(e.message));
      t.once("secureConnect", () => {
        if (gaveUp) return t.destroy();
        t.write(Uint8Array.of(Preamble.Mux));
        const session = new MuxSession(streamWire(t), true, muxOpts);
        attach(t, session, null);
        resolve(session);
      });
    });
  });
  const timedOut = () => new DialError(`dial ${addr} (TLS): timed out after ${timeoutMs} ms`);
  return withDeadline(connected, timeoutMs, timedOut).catch((e: unknown) => {
    gaveUp = true;
    raw.destroy();
    throw e;
  });
}
