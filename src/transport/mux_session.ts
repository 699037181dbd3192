// A yamux session over any byte wire: frame parsing, stream table, the
// prioritised write queue with backpressure to the socket, keepalive, GoAway.
// Reads never wait on writes, so both ends writing past a window cannot deadlock.
import { TransportError } from "./transport_error.ts";
import { ANONYMOUS, type PeerIdentity } from "./peer_identity.ts";
import { assert } from "../lib/assert.ts";
import {
  decodeHeader,
  encodeHeader,
  Flag,
  FrameType,
  GoAwayCode,
  HEADER_SIZE,
  INITIAL_WINDOW,
  ProtocolError,
  type FrameHeader,
} from "./frame.ts";
import { MuxStream, type StreamHost } from "./mux_stream.ts";
import { deadlineTimer, type DeadlineTimer, pollUntil, withDeadline } from "../lib/deadline.ts";

/** The byte pipe under a session; `write` may accept only part of the buffer (Bun sockets do). */
export interface MuxWire {
  write(data: Uint8Array): number;
  end(): void;
  /**
   * True when write() has copied or sent the bytes it accepted before returning (Bun sockets), so
   * the session may reuse its send buffer. A wire that keeps a reference (a node stream) leaves it unset.
   */
  readonly copiesOnWrite?: boolean;
}

export interface MuxOptions {
  /** Receive window per stream; 256 KiB (yamux's) or larger. */
  maxStreamWindow?: number;
  /** Largest data frame we send; small frames keep latency low for other streams. */
  maxFrame?: number;
  /** Inbound streams not yet taken by accept() (only when no onStream handler). */
  acceptBacklog?: number;
  maxStreams?: number;
  keepaliveIntervalMs?: number;
  /** A ping unanswered this long, or a socket that will not drain this long, kills the session. */
  keepaliveTimeoutMs?: number;
  writeTimeoutMs?: number;
  /** Control frames (window updates, ping replies, resets) allowed to queue before the peer is cut off. */
  maxQueuedControl?: number;
  onStream?: (s: MuxStream) => void;
  onClose?: (reason: string) => void;
  log?: (level: string, msg: string) => void;
  /** Told of each stream refused (instead of a log line each, so a flood of SYNs cannot flood the log). */
  onStreamRefused?: (reason: string) => void;
}

export class SessionClosedError extends TransportError {
  constructor(message: string) {
    super("SESSION_CLOSED", message);
    this.name = "SessionClosedError";
  }
}

interface DataFrame {
  stream: MuxStream;
  flags: number;
  payload: Uint8Array;
  done: () => void;
}

const WRITE_BATCH = 256 * 1024;
/** Control frames that fit in the reused send buffer beside a full batch; more fall back to a fresh buffer. */
const CONTROL_ROOM = 256;
/**
 * Payloads this large go to the socket as their own write instead of being copied behind their
 * header: copying a payload this large costs more than the extra write. Smaller ones are gathered.
 */
const ZERO_COPY_MIN = 16 * 1024;

export class MuxSession implements StreamHost {
  readonly isClient: boolean;
  /** Set by the listener (or dialler) before any stream: who the session's opening proved the peer is. */
  peer: PeerIdentity = ANONYMOUS;
  readonly maxFrame: number;
  private readonly wire: MuxWire;
  private readonly maxWindow: number;
  private readonly acceptBacklog: number;
  private readonly maxStreams: number;
  private readonly keepaliveIntervalMs: number;
  private readonly keepaliveTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private readonly maxQueuedControl: number;
  private readonly opts: MuxOptions;

  private readonly streams = new Map<number, MuxStream>();
  private nextId: number;
  private readonly acceptQueue: MuxStream[] = [];
  private acceptWaiters: Array<{ resolve: (s: MuxStream) => void; reject: (e: Error) => void }> = [];

  // receive state
  private readonly hdrBuf = new Uint8Array(HEADER_SIZE);
  private hdrFill = 0;
  private payloadLeft = 0;
  private payloadStream: MuxStream | null = null;
  private payloadFlags = 0;

  // send state
  private control: Uint8Array[] = [];
  private data: DataFrame[] = [];
  /** The batch being written: header runs from sendBuf and, on copying wires, large payloads as they are. */
  private segs: Array<{ buf: Uint8Array; done: (() => void) | null }> = [];
  private segAt = 0;
  private wireFailed = false;
  /**
   * Reused for every batch (allocated on first send): a fresh buffer per frame cost more than the
   * copy itself (zeroing and first-touch page faults). Safe because the socket copies what it accepts
   * and no new batch is built while segs still point into this one.
   */
  private sendBuf: Uint8Array | null = null;
  private flushScheduled = false;
  private waitingDrain = false;
  private writeTimer: DeadlineTimer | null = null;

  private localGoAway = false;
  private remoteGoAway = false;
  private closedReason: string | null = null;
  private nextPingId = 1;
  private readonly pings = new Map<number, { start: number; resolve: (rtt: number) => void; reject: (e: Error) => void }>();
  private keepaliveTimer: ReturnType<typeof setTimeout> | null = null;
  /** Last measured round trip, ms (NaN until the first ping returns). */
  rttMs = Number.NaN;
  /** Frame headers read from the peer so far (a listener's first-frame deadline looks at it). */
  headersReceived = 0;

  constructor(wire: MuxWire, isClient: boolean, opts: MuxOptions = {}) {
    this.wire = wire;
    this.isClient = isClient;
    this.opts = opts;
    this.nextId = isClient ? 1 : 2;
    this.maxWindow = opts.maxStreamWindow ?? INITIAL_WINDOW;
    this.maxFrame = opts.maxFrame ?? 128 * 1024;
    this.acceptBacklog = opts.acceptBacklog ?? 256;
    this.maxStreams = opts.maxStreams ?? 4096;
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? 30_000;
    this.keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? 10_000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 10_000;
    this.maxQueuedControl = opts.maxQueuedControl ?? 65_536;
    assert(this.maxWindow >= INITIAL_WINDOW && this.maxWindow <= 0x7fffffff, "maxStreamWindow out of range");
    assert(this.maxFrame > 0 && this.maxFrame <= 16 * 1024 * 1024, "maxFrame out of range");
    if (this.keepaliveIntervalMs > 0) this.armKeepalive();
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }
  get closeReason(): string | null {
    return this.closedReason;
  }
  get numStreams(): number {
    return this.streams.size;
  }
  /** True once either side said GoAway: no new streams should be opened on this session. */
  get goingAway(): boolean {
    return this.localGoAway || this.remoteGoAway;
  }

  open(): MuxStream {
    if (this.closedReason !== null) throw new SessionClosedError(`session closed: ${this.closedReason}`);
    if (this.remoteGoAway) throw new SessionClosedError("session closed: remote sent GoAway");
    if (this.localGoAway) throw new SessionClosedError("session closed: shutting down");
    if (this.streams.size >= this.maxStreams) throw new SessionClosedError(`too many open streams (${this.maxStreams})`);
    if (this.nextId > 0xffffffff) throw new SessionClosedError("stream ids exhausted");
    const s = new MuxStream(this, this.nextId, true, this.maxWindow);
    this.nextId += 2;
    this.streams.set(s.id, s);
    s.announce();
    return s;
  }

  accept(): Promise<MuxStream> {
    const s = this.acceptQueue.shift();
    if (s) {
      s.announce();
      return Promise.resolve(s);
    }
    if (this.closedReason !== null) return Promise.reject(new SessionClosedError(`session closed: ${this.closedReason}`));
    return new Promise((resolve, reject) => this.acceptWaiters.push({ resolve, reject }));
  }

  /** Round-trip a ping; resolves with the RTT in ms, rejects after keepaliveTimeoutMs. */
  ping(): Promise<number> {
    if (this.closedReason !== null) return Promise.reject(new SessionClosedError(`session closed: ${this.closedReason}`));
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 1) >>> 0 || 1;
    const answered = new Promise<number>((resolve, reject) => {
      this.pings.set(id, { start: performance.now(), resolve, reject });
      this.queueControl(encodeHeader(FrameType.Ping, Flag.SYN, 0, id));
    });
    return withDeadline(answered, this.keepaliveTimeoutMs, () => new SessionClosedError("ping timeout")).catch((e: unknown) => {
      // A late ACK for a ping given up on finds nothing to resolve.
      this.pings.delete(id);
      throw e;
    });
  }

  /** Say GoAway(normal): refuse new inbound streams, let open ones finish. */
  goAway(): void {
    if (this.localGoAway || this.closedReason !== null) return;
    this.localGoAway = true;
    this.queueControl(encodeHeader(FrameType.GoAway, 0, 0, GoAwayCode.Normal));
  }

  /** GoAway, wait for open streams up to graceMs, then close. */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.goAway();
    // Streams end by frames of either side; no event announces the last one, so poll.
    await pollUntil(() => this.streams.size === 0 || this.closedReason !== null, graceMs);
    this.close("shutdown");
  }

  /** Close now: fail every stream, flush what we can, end the wire. */
  close(reason = "closed", goAwayCode?: number): void {
    if (this.closedReason !== null) return;
    if (goAwayCode !== undefined) {
      // Best effort: the GoAway goes ahead of any queued data.
      for (const f of this.data) f.done();
      this.data = [];
      this.control.push(encodeHeader(FrameType.GoAway, 0, 0, goAwayCode));
      this.flushNow();
    } else {
      this.flushNow();
    }
    this.closedReason = reason;
    if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
    this.writeTimer?.cancel();
    for (const p of this.pings.values()) {
      p.reject(new SessionClosedError(`session closed: ${reason}`));
    }
    this.pings.clear();
    for (const s of [...this.streams.values()]) s.sessionClosed(`session closed: ${reason}`);
    this.streams.clear();
    for (const f of this.data) f.done();
    this.data = [];
    for (let i = this.segAt; i < this.segs.length; i++) this.segs[i]!.done?.();
    this.segs = [];
    this.segAt = 0;
    this.control = [];
    for (const w of this.acceptWaiters) w.reject(new SessionClosedError(`session closed: ${reason}`));
    this.acceptWaiters = [];
    try {
      this.wire.end();
    } catch {
      // already gone
    }
    this.opts.onClose?.(reason);
  }

  // ---- wire events ----

  /** Feed bytes from the wire. Never throws: protocol errors end the session with GoAway(1). */
  onData(chunk: Uint8Array): void {
    if (this.closedReason !== null) return;
    try {
      this.parse(chunk);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.opts.log?.("warn", `yamux protocol error: ${e.message}`);
        this.close(`protocol error: ${e.message}`, GoAwayCode.ProtocolError);
      } else {
        this.opts.log?.("error", `yamux internal error: ${e instanceof Error ? e.stack : String(e)}`);
        this.close(`internal error: ${e instanceof Error ? e.message : String(e)}`, GoAwayCode.InternalError);
      }
    }
  }

  onDrain(): void {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    this.writeTimer?.cancel();
    this.writeTimer = null;
    this.flushNow();
  }

  onWireClosed(reason = "connection closed"): void {
    this.close(reason);
  }

  // ---- StreamHost ----

  sendData(stream: MuxStream, flags: number, payload: Uint8Array): Promise<void> {
    if (this.closedReason !== null) return Promise.reject(new SessionClosedError(`session closed: ${this.closedReason}`));
    return new Promise<void>((done) => {
      this.data.push({ stream, flags, payload, done });
      this.scheduleFlush();
    });
  }

  sendWindowUpdate(stream: MuxStream, flags: number, delta: number): void {
    this.queueControl(encodeHeader(FrameType.WindowUpdate, flags, stream.id, delta));
  }

  streamDone(stream: MuxStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
  }

  // ---- receive path ----

  private parse(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length && this.closedReason === null) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - off);
        // A real copy (Buffer#slice would be a view): the wire may reuse or release its receive buffer
        // once this callback returns (tcp_wire releases it at once).
        this.payloadStream?.pushData(Uint8Array.prototype.slice.call(chunk, off, off + n));
        off += n;
        this.payloadLeft -= n;
        if (this.payloadLeft === 0) this.finishData();
        continue;
      }
      const n = Math.min(HEADER_SIZE - this.hdrFill, chunk.length - off);
      this.hdrBuf.set(chunk.subarray(off, off + n), this.hdrFill);
      this.hdrFill += n;
      off += n;
      if (this.hdrFill < HEADER_SIZE) break;
      this.hdrFill = 0;
      this.handleHeader(decodeHeader(this.hdrBuf));
    }
  }

  private handleHeader(h: FrameHeader): void {
    this.headersReceived++;
    switch (h.type) {
      case FrameType.Ping:
        return this.handlePing(h);
      case FrameType.GoAway:
        return this.handleGoAway(h);
      case FrameType.Data:
      case FrameType.WindowUpdate:
        return this.handleStreamFrame(h);
    }
  }

  private handlePing(h: FrameHeader): void {
    if (h.flags & Flag.SYN) {
      this.queueControl(encodeHeader(FrameType.Ping, Flag.ACK, 0, h.length));
    } else if (h.flags & Flag.ACK) {
      const p = this.pings.get(h.length);
      if (!p) return;
      this.pings.delete(h.length);
      this.rttMs = performance.now() - p.start;
      p.resolve(this.rttMs);
    } else {
      throw new ProtocolError("ping without SYN or ACK");
    }
  }

  private handleGoAway(h: FrameHeader): void {
    if (h.length === GoAwayCode.Normal) {
      this.remoteGoAway = true;
      return;
    }
    if (h.length === GoAwayCode.ProtocolError || h.length === GoAwayCode.InternalError) {
      this.close(`remote GoAway(${h.length === 1 ? "protocol error" : "internal error"})`);
      return;
    }
    throw new ProtocolError(`unknown GoAway code ${h.length}`);
  }

  private handleStreamFrame(h: FrameHeader): void {
    let stream = this.streams.get(h.streamId);
    if (h.flags & Flag.SYN) {
      if (stream) throw new ProtocolError(`duplicate stream ${h.streamId}`);
      if ((h.streamId % 2 === 1) !== !this.isClient) throw new ProtocolError(`stream ${h.streamId} has the wrong parity for the peer`);
      stream = this.incoming(h.streamId);
    }
    if (h.type === FrameType.WindowUpdate) {
      if (!stream) return; // late frame for a stream we already closed or refused
      if (!stream.addSendWindow(h.length)) throw new ProtocolError(`window overflow on stream ${h.streamId}`);
      this.applyFlags(stream, h.flags);
      return;
    }
    // Data
    if (h.length > 0x7fffffff) throw new ProtocolError(`data frame of ${h.length} bytes`);
    if (stream) {
      if (h.length > stream.receiveWindow) {
        throw new ProtocolError(`receive window exceeded on stream ${h.streamId} (${h.length} > ${stream.receiveWindow})`);
      }
      stream.consumeWindow(h.length);
    } else if (h.length > this.maxWindow) {
      // A stream we reset may still have up to one window in flight; more is a broken peer.
      throw new ProtocolError(`data frame of ${h.length} bytes for unknown stream ${h.streamId}`);
    }
    this.payloadStream = stream ?? null;
    this.payloadFlags = h.flags;
    this.payloadLeft = h.length;
    if (h.length === 0) this.finishData();
  }

  /** FIN/RST on a data frame take effect after its payload is delivered. */
  private finishData(): void {
    const s = this.payloadStream;
    this.payloadStream = null;
    if (s) this.applyFlags(s, this.payloadFlags);
  }

  private applyFlags(s: MuxStream, flags: number): void {
    if (flags & Flag.RST) {
      s.remoteReset();
      return;
    }
    if (flags & Flag.FIN) s.remoteClosed();
  }

  private incoming(id: number): MuxStream | undefined {
    const refuse =
      this.localGoAway || this.streams.size >= this.maxStreams || (!this.opts.onStream && this.acceptQueue.length >= this.acceptBacklog);
    if (refuse) {
      const reason = this.localGoAway ? "stream_going_away" : "stream_limit";
      if (this.opts.onStreamRefused) this.opts.onStreamRefused(reason);
      else this.opts.log?.("warn", `yamux: refusing stream ${id} (${reason})`);
      this.queueControl(encodeHeader(FrameType.WindowUpdate, Flag.RST, id, 0));
      return undefined;
    }
    const s = new MuxStream(this, id, false, this.maxWindow);
    this.streams.set(id, s);
    if (this.opts.onStream) {
      s.announce();
      this.opts.onStream(s);
    } else {
      const w = this.acceptWaiters.shift();
      if (w) {
        s.announce();
        w.resolve(s);
      } else this.acceptQueue.push(s);
    }
    return s;
  }

  // ---- send path ----

  private queueControl(frame: Uint8Array): void {
    if (this.closedReason !== null) return;
    if (this.control.length >= this.maxQueuedControl) {
      this.close("control queue overflow (peer not reading)", GoAwayCode.InternalError);
      return;
    }
    this.control.push(frame);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain) return;
    this.flushScheduled = true;
    // A microtask, not a timer: frames queued in the same tick share one write, with no delay.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flushNow();
    });
  }

  private flushNow(): void {
    for (;;) {
      if (this.waitingDrain || this.wireFailed) return;
      if (this.segAt === this.segs.length) {
        this.segs = [];
        this.segAt = 0;
        if (!this.buildBatch()) return;
      }
      const seg = this.segs[this.segAt]!;
      let n: number;
      try {
        n = this.wire.write(seg.buf);
      } catch {
        n = -1;
      }
      if (n < 0) {
        // The wire is gone: nothing more can be written, so close() must not try to flush again.
        this.wireFailed = true;
        if (this.closedReason === null) this.close("write failed: connection closed");
        return;
      }
      if (n < seg.buf.length) {
        seg.buf = seg.buf.subarray(n);
        this.waitingDrain = true;
        if (this.writeTimeoutMs > 0 && this.closedReason === null) {
          this.writeTimer = deadlineTimer(this.writeTimeoutMs, () => {
            this.writeTimer = null;
            this.close(`write timeout: socket did not drain in ${this.writeTimeoutMs} ms`);
          });
        }
        return;
      }
      this.segAt++;
      seg.done?.();
    }
  }

  /**
   * Lay out the next batch in segs: control frames first, then data frames in arrival order (one per
   * stream at a time: round robin). A copied frame's writer is released at once; a zero-copy one's
   * once its payload is written, since until then the socket still needs the caller's bytes.
   */
  private buildBatch(): boolean {
    if (this.control.length === 0 && this.data.length === 0) return false;
    const zeroCopy = this.wire.copiesOnWrite === true;
    let size = this.control.length * HEADER_SIZE;
    let sent = 0;
    let take = 0;
    while (take < this.data.length && (take === 0 || sent < WRITE_BATCH)) {
      const len = this.data[take]!.payload.length;
      size += HEADER_SIZE + (zeroCopy && len >= ZERO_COPY_MIN ? 0 : len);
      sent += HEADER_SIZE + len;
      take++;
    }
    if (zeroCopy) this.sendBuf ??= new Uint8Array(WRITE_BATCH + HEADER_SIZE + this.maxFrame + CONTROL_ROOM * HEADER_SIZE);
    const out = this.sendBuf !== null && size <= this.sendBuf.length ? this.sendBuf : new Uint8Array(size);
    let at = 0;
    for (const c of this.control) {
      out.set(c, at);
      at += HEADER_SIZE;
    }
    this.control = [];
    const frames = take === this.data.length ? this.data : this.data.slice(0, take);
    this.data = take === this.data.length ? [] : this.data.slice(take);
    let start = 0;
    for (const f of frames) {
      encodeHeader(FrameType.Data, f.flags, f.stream.id, f.payload.length, out, at);
      at += HEADER_SIZE;
      if (zeroCopy && f.payload.length >= ZERO_COPY_MIN) {
        this.segs.push({ buf: out.subarray(start, at), done: null });
        this.segs.push({ buf: f.payload, done: f.done });
        start = at;
      } else {
        out.set(f.payload, at);
        at += f.payload.length;
        f.done();
      }
    }
    if (at > start) this.segs.push({ buf: out.subarray(start, at), done: null });
    assert(at === size, "batch size mismatch");
    return true;
  }

  private armKeepalive(): void {
    this.keepaliveTimer = setTimeout(() => {
      this.keepaliveTimer = null;
      if (this.closedReason !== null) return;
      this.ping().then(
        () => {
          if (this.closedReason === null) this.armKeepalive();
        },
        () => this.close("keepalive timeout: peer did not answer a ping"),
      );
    }, this.keepaliveIntervalMs);
    (this.keepaliveTimer as { unref?: () => void }).unref?.();
  }
}
