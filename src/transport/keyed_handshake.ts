// The cluster-key session opening (preamble 0x02), run before the mux starts: a mutual
// challenge–response over fresh nonces from both ends. The dialler says hello (version, nonce, key
// id, its server id and region); the acceptor answers its nonce, id and region and
// HMAC-SHA-256(key, "server" | transcript); the dialler checks it and answers HMAC(key, "client" |
// transcript); the acceptor checks that and says ok. Both nonces make a recorded opening useless
// again (replay), the two labels stop a MAC being reflected, and the ids inside the transcript bind
// the session to the server that opened it. Messages are length-prefixed and small; a longer one
// fails the handshake. Frames after it are not MACed: one MAC per session keeps a message's cost
// what it was.
import { concatBytes } from "../lib/bytes.ts";
import { TransportError } from "./transport_error.ts";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { KEY_ID_BYTES, type ClusterKeys } from "./cluster_keys.ts";
import type { PeerIdentity } from "./peer_identity.ts";

export const HANDSHAKE_VERSION = 1;
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
/** Largest handshake message body: ids and regions are at most 255 bytes each. */
export const MAX_HANDSHAKE_MESSAGE = 1024;
const STATUS_OK = 0;
const STATUS_REFUSED = 1;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export interface Self {
  id: string;
  region: string;
}

export class HandshakeError extends TransportError {
  constructor(message: string) {
    super("HANDSHAKE", message);
    this.name = "HandshakeError";
  }
}

/** Collects length-prefixed (u16 big-endian) messages from a byte stream. */
class Messages {
  private buf = new Uint8Array(0);

  push(chunk: Uint8Array): void {
    this.buf = concatBytes([this.buf, chunk]);
  }

  /** The next whole message, or null while it is incomplete. */
  take(): Uint8Array | null {
    if (this.buf.length < 2) return null;
    const n = (this.buf[0]! << 8) | this.buf[1]!;
    if (n === 0 || n > MAX_HANDSHAKE_MESSAGE)
      throw new HandshakeError(`handshake message of ${n} bytes (at most ${MAX_HANDSHAKE_MESSAGE})`);
    if (this.buf.length < 2 + n) return null;
    const m = this.buf.subarray(2, 2 + n);
    this.buf = this.buf.subarray(2 + n);
    return m;
  }

  /** Bytes after the handshake: the start of the mux session. */
  rest(): Uint8Array {
    return this.buf;
  }
}

function frame(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(2 + n);
  out[0] = n >> 8;
  out[1] = n & 0xff;
  let o = 2;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A string as one length byte and its UTF-8 bytes. */
function lp(s: string): Uint8Array {
  const b = enc.encode(s);
  if (b.length > 255) throw new HandshakeError(`"${s.slice(0, 40)}…" is longer than 255 bytes`);
  return Uint8Array.of(b.length, ...b);
}

class Reader {
  private o = 0;
  constructor(private readonly b: Uint8Array) {}
  bytes(n: number): Uint8Array {
    if (this.o + n > this.b.length) throw new HandshakeError("truncated handshake message");
    const r = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return r;
  }
  u8(): number {
    return this.bytes(1)[0]!;
  }
  str(): string {
    try {
      return dec.decode(this.bytes(this.u8()));
    } catch (e) {
      if (e instanceof HandshakeError) throw e;
      throw new HandshakeError("handshake string is not UTF-8");
    }
  }
  end(): void {
    if (this.o !== this.b.length) throw new HandshakeError("trailing bytes in handshake message");
  }
  remaining(): Uint8Array {
    return this.b.subarray(this.o);
  }
}

function refusal(why: string): Uint8Array {
  return frame([Uint8Array.of(STATUS_REFUSED), enc.encode(why.slice(0, 200))]);
}

/** A message's status byte; a refusal becomes an error carrying the peer's reason. */
function status(r: Reader, who: string): void {
  const s = r.u8();
  if (s === STATUS_OK) return;
  if (s === STATUS_REFUSED) throw new HandshakeError(`${who} refused the session: ${new TextDecoder().decode(r.remaining())}`);
  throw new HandshakeError(`unknown handshake status ${s}`);
}

interface Transcript {
  keyId: Uint8Array;
  dialNonce: Uint8Array;
  acceptNonce: Uint8Array;
  dialer: Self;
  acceptor: Self;
}

function mac(key: Uint8Array, label: "server" | "client", t: Transcript): Uint8Array {
  const h = createHmac("sha256", key);
  h.update(`edgenode-rpc-session-v${HANDSHAKE_VERSION}\0${label}\0`);
  h.update(t.keyId);
  h.update(t.dialNonce);
  h.update(t.acceptNonce);
  for (const p of [t.dialer.id, t.dialer.region, t.acceptor.id, t.acceptor.region]) h.update(lp(p));
  return new Uint8Array(h.digest());
}

function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export type Step =
  /** Bytes to send; the handshake goes on. */
  | { send?: Uint8Array; done?: undefined; fail?: undefined }
  /** Finished: who the peer is, and what followed the handshake on the wire (the mux's first bytes). */
  | { send?: Uint8Array; done: { peer: PeerIdentity; rest: Uint8Array }; fail?: undefined }
  /** Failed: why; `send` (a refusal for the peer), if any, goes out before the connection closes. */
  | { send?: Uint8Array; done?: undefined; fail: string };

/** The accepting side, fed the bytes after the 0x02 preamble. */
export class KeyedAcceptor {
  private readonly msgs = new Messages();
  private phase: "hello" | "proof" | "over" = "hello";
  private t: Transcript | null = null;
  private key: Uint8Array | null = null;

  constructor(
    private readonly keys: ClusterKeys,
    private readonly self: Self,
    private readonly random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
  ) {}

  feed(chunk: Uint8Array): Step {
    if (this.phase === "over") return { fail: "handshake already over" };
    try {
      this.msgs.push(chunk);
      const m = this.msgs.take();
      if (!m) return {};
      return this.phase === "hello" ? this.hello(m) : this.proof(m);
    } catch (e) {
      this.phase = "over";
      const why = e instanceof HandshakeError ? e.message : String(e);
      return { fail: why, send: refusal("bad handshake") };
    }
  }

  private hello(m: Uint8Array): Step {
    const r = new Reader(m);
    const v = r.u8();
    if (v !== HANDSHAKE_VERSION) {
      this.phase = "over";
      return {
        fail: `handshake version ${v}`,
        send: refusal(`handshake version ${v} is not supported (this server speaks ${HANDSHAKE_VERSION})`),
      };
    }
    const dialNonce = r.bytes(NONCE_BYTES);
    const keyId = r.bytes(KEY_ID_BYTES);
    const dialer = { id: r.str(), region: r.str() };
    r.end();
    if (dialer.id === "") throw new HandshakeError("empty server id");
    const key = this.keys.find(keyId);
    if (!key) {
      this.phase = "over";
      return {
        fail: `server ${dialer.id} offered a key this server does not hold`,
        send: refusal("the cluster key does not match (a different encrypt key?)"),
      };
    }
    const acceptNonce = this.random(NONCE_BYTES);
    this.key = key;
    this.t = { keyId: new Uint8Array(keyId), dialNonce: new Uint8Array(dialNonce), acceptNonce, dialer, acceptor: this.self };
    this.phase = "proof";
    const more = this.msgs.rest().length > 0 ? this.proofIfQueued() : null;
    const send = frame([Uint8Array.of(STATUS_OK), acceptNonce, lp(this.self.id), lp(this.self.region), mac(key, "server", this.t)]);
    if (more) return { ...more, send: more.send ? concatBytes([send, more.send]) : send };
    return { send };
  }

  /** A dialler cannot know our nonce before our answer: anything it sent after its hello is not a valid proof. */
  private proofIfQueued(): Step | null {
    const m = this.msgs.take();
    return m ? this.proof(m) : null;
  }

  private proof(m: Uint8Array): Step {
    const r = new Reader(m);
    status(r, "the dialling server");
    const got = r.bytes(MAC_BYTES);
    r.end();
    this.phase = "over";
    const t = this.t!;
    if (!macEqual(got, mac(this.key!, "client", t))) {
      return { fail: `server ${t.dialer.id} did not prove the cluster key`, send: refusal("the cluster key does not match") };
    }
    return {
      send: frame([Uint8Array.of(STATUS_OK)]),
      done: { peer: { kind: "key", serverId: t.dialer.id, region: t.dialer.region, keyId: hex(t.keyId) }, rest: this.msgs.rest() },
    };
  }
}

/** The dialling side: `hello()` goes out after the 0x02 preamble, then every byte read is fed. */
export class KeyedDialer {
  private readonly msgs = new Messages();
  private phase: "challenge" | "verdict" | "over" = "challenge";
  private readonly nonce: Uint8Array;
  private acceptor: Self | null = null;
  private readonly key: Uint8Array;
  private readonly keyId: Uint8Array;

  constructor(
    keys: ClusterKeys,
    private readonly self: Self,
    random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
  ) {
    this.key = keys.primary.key;
    this.keyId = keys.primary.id;
    this.nonce = random(NONCE_BYTES);
  }

  hello(): Uint8Array {
    return frame([Uint8Array.of(HANDSHAKE_VERSION), this.nonce, this.keyId, lp(this.self.id), lp(this.self.region)]);
  }

  feed(chunk: Uint8Array): Step {
    if (this.phase === "over") return { fail: "handshake already over" };
    try {
      this.msgs.push(chunk);
      let m = this.msgs.take();
      if (!m) return {};
      if (this.phase === "challenge") {
        const send = this.challenge(m);
        m = this.msgs.take();
        if (!m) return { send };
        const v = this.verdict(m);
        return { ...v, send };
      }
      return this.verdict(m);
    } catch (e) {
      this.phase = "over";
      return { fail: e instanceof HandshakeError ? e.message : String(e) };
    }
  }

  private challenge(m: Uint8Array): Uint8Array {
    const r = new Reader(m);
    status(r, "the server");
    const acceptNonce = r.bytes(NONCE_BYTES);
    const acceptor = { id: r.str(), region: r.str() };
    const got = r.bytes(MAC_BYTES);
    r.end();
    const t: Transcript = {
      keyId: this.keyId,
      dialNonce: this.nonce,
      acceptNonce: new Uint8Array(acceptNonce),
      dialer: this.self,
      acceptor,
    };
    if (!macEqual(got, mac(this.key, "server", t))) throw new HandshakeError("the server did not prove the cluster key");
    this.acceptor = acceptor;
    this.phase = "verdict";
    return frame([Uint8Array.of(STATUS_OK), mac(this.key, "client", t)]);
  }

  private verdict(m: Uint8Array): Step {
    const r = new Reader(m);
    status(r, "the server");
    r.end();
    this.phase = "over";
    const a = this.acceptor!;
    return { done: { peer: { kind: "key", serverId: a.id, region: a.region, keyId: hex(this.keyId) }, rest: this.msgs.rest() } };
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
