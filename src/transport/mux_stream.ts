// One yamux stream: its receive buffer and window (credit we gave the peer),
// its send window (credit the peer gave us), half-close (FIN) and reset (RST).
import type { PeerIdentity } from "./peer_identity.ts";
import { assert } from "../lib/assert.ts";
import { Flag, INITIAL_WINDOW } from "./frame.ts";
import { TransportError } from "./transport_error.ts";

export class StreamClosedError extends TransportError {
  constructor(reason: "RESET" | "SESSION_CLOSED" | "WRITE_CLOSED", message: string) {
    super(reason, message);
    this.name = "StreamClosedError";
  }
}

/** What a stream needs from its session; implemented by MuxSession. */
export interface StreamHost {
  /** Queue one data frame; resolves once its bytes are handed to the socket. */
  sendData(stream: MuxStream, flags: number, payload: Uint8Array): Promise<void>;
  /** Queue a window update (or a bare flags frame when delta is 0). */
  sendWindowUpdate(stream: MuxStream, flags: number, delta: number): void;
  streamDone(stream: MuxStream): void;
  readonly maxFrame: number;
  /** Who the session's opening proved the peer is. */
  readonly peer: PeerIdentity;
}

type Waiter = { resolve: () => void; reject: (e: Error) => void };

export class MuxStream {
  readonly id: number;
  private readonly host: StreamHost;
  private readonly maxWindow: number;
  private recvWindow: number;
  private sendWindow = INITIAL_WINDOW;
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  /** SYN we still have to send (outbound) or ACK we still owe (inbound). */
  private pendingFlags: number;
  private localFin = false;
  private remoteFin = false;
  private failure: StreamClosedError | null = null;
  private readWaiter: Waiter | null = null;
  private windowWaiter: Waiter | null = null;
  private writing: Promise<void> = Promise.resolve();
  private failListeners: Array<(e: StreamClosedError) => void> = [];

  /** The name the session's peer proved with its TLS certificate, if the listener checks names. */
  get peer(): PeerIdentity {
    return this.host.peer;
  }

  constructor(host: StreamHost, id: number, outbound: boolean, maxWindow: number) {
    assert(maxWindow >= INITIAL_WINDOW, "stream window below the yamux minimum");
    this.host = host;
    this.id = id;
    this.maxWindow = maxWindow;
    this.recvWindow = INITIAL_WINDOW;
    this.pendingFlags = outbound ? Flag.SYN : Flag.ACK;
  }

  get isReset(): boolean {
    return this.failure !== null;
  }
  get isClosed(): boolean {
    return this.failure !== null || (this.localFin && this.remoteFin);
  }
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Call `cb` once if the stream is reset (either side) or its session dies. */
  onFail(cb: (e: StreamClosedError) => void): void {
    if (this.failure) cb(this.failure);
    else this.failListeners.push(cb);
  }

  /** Send SYN/ACK now, with our larger window if configured (yamux grows windows by update). */
  announce(): void {
    this.sendUpdate(true);
  }

  /** Next received chunk, or null at the peer's FIN. Throws if the stream was reset. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const c = this.chunks.shift();
      if (c !== undefined) {
        this.buffered -= c.length;
        this.sendUpdate(false);
        return c;
      }
      if (this.failure) throw this.failure;
      if (this.remoteFin) return null;
      assert(this.readWaiter === null, "concurrent reads on one stream");
      await new Promise<void>((resolve, reject) => {
        this.readWaiter = { resolve, reject };
      });
    }
  }

  /** Write all of `data`, waiting for send window and socket; writes on one stream are serialised. */
  write(data: Uint8Array): Promise<void> {
    const p = this.writing.then(() => this.writeNow(data));
    this.writing = p.catch(() => {});
    return p;
  }

  private async writeNow(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.failure) throw this.failure;
      if (this.localFin) throw new StreamClosedError("WRITE_CLOSED", `stream ${this.id}: write after close`);
      if (this.sendWindow === 0) {
        await new Promise<void>((resolve, reject) => {
          this.windowWaiter = { resolve, reject };
        });
        continue;
      }
      const n = Math.min(data.length - off, this.sendWindow, this.host.maxFrame);
      this.sendWindow -= n;
      const flags = this.pendingFlags;
      this.pendingFlags = 0;
      await this.host.sendData(this, flags, data.subarray(off, off + n));
      off += n;
    }
  }

  /** Half-close: FIN after every queued write. Reading continues until the peer's FIN. */
  async closeWrite(): Promise<void> {
    await this.writing;
    if (this.localFin || this.failure) return;
    this.localFin = true;
    const flags = this.pendingFlags | Flag.FIN;
    this.pendingFlags = 0;
    this.host.sendWindowUpdate(this, flags, 0);
    if (this.remoteFin) this.host.streamDone(this);
  }

  /** Abort both directions: RST to the peer, errors to local readers and writers. */
  reset(): void {
    if (this.failure) return;
    if (!(this.localFin && this.remoteFin)) this.host.sendWindowUpdate(this, Flag.RST, 0);
    this.fail(new StreamClosedError("RESET", `stream ${this.id} reset locally`));
  }

  // ---- called by the session ----

  /** Credit the peer may still use; the session checks a data frame against it before delivery. */
  get receiveWindow(): number {
    return this.recvWindow;
  }
  consumeWindow(n: number): void {
    assert(n <= this.recvWindow, "consumeWindow beyond window");
    this.recvWindow -= n;
  }
  pushData(chunk: Uint8Array): void {
    if (this.failure || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.wakeReader();
  }
  /** Returns false when the increment would overflow a u32 window (a protocol error). */
  addSendWindow(delta: number): boolean {
    if (this.sendWindow + delta > 0xffffffff) return false;
    this.sendWindow += delta;
    if (delta > 0 && this.windowWaiter) {
      const w = this.windowWaiter;
      this.windowWaiter = null;
      w.resolve();
    }
    return true;
  }
  remoteClosed(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    this.wakeReader();
    if (this.localFin) this.host.streamDone(this);
  }
  remoteReset(): void {
    // Keep what already arrived readable: an RPC abort sends its error frame just before the RST.
    this.fail(new StreamClosedError("RESET", `stream ${this.id} reset by peer`), false);
  }
  sessionClosed(reason: string): void {
    this.fail(new StreamClosedError("SESSION_CLOSED", reason));
  }

  private fail(e: StreamClosedError, discard = true): void {
    if (this.failure) return;
    this.failure = e;
    if (discard) {
      this.chunks.length = 0;
      this.buffered = 0;
    }
    const r = this.readWaiter;
    this.readWaiter = null;
    r?.reject(e);
    const w = this.windowWaiter;
    this.windowWaiter = null;
    w?.reject(e);
    this.host.streamDone(this);
    const ls = this.failListeners;
    this.failListeners = [];
    for (const l of ls) l(e);
  }

  private wakeReader(): void {
    const r = this.readWaiter;
    this.readWaiter = null;
    r?.resolve();
  }

  /** yamux rule: grant more credit only once it is worth a frame (half the window), or flags are owed. */
  private sendUpdate(force: boolean): void {
    if (this.failure) return;
    const delta = this.maxWindow - this.buffered - this.recvWindow;
    const flags = force ? this.pendingFlags : 0;
    if (!force && delta < this.maxWindow / 2) return;
    if (force) this.pendingFlags = 0;
    if (delta <= 0 && flags === 0) return;
    this.recvWindow += Math.max(0, delta);
    this.host.sendWindowUpdate(this, flags, Math.max(0, delta));
  }
}
