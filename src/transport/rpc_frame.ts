// RPC framing on a mux stream: each message is a u32 big-endian length then
// one CBOR item. The length bounds a frame before any of it is decoded.
import { assert } from "../lib/assert.ts";
import { decode, encode } from "../lib/codec.ts";
import { release } from "../lib/release.ts";
import type { MuxStream } from "./mux_stream.ts";
import { StreamClosedError } from "./mux_stream.ts";
import { RpcError } from "./rpc_error.ts";

export const DEFAULT_MAX_RPC_FRAME = 16 * 1024 * 1024;

export function encodeFrame(value: unknown): Uint8Array {
  const body = encode(value);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** CBOR of the map key "Chunk" behind a one-entry map-16 head, as cbor-x writes {Chunk: bytes}. */
const CHUNK_MAP_HEAD = new Uint8Array([0xb9, 0x00, 0x01, 0x65, 0x43, 0x68, 0x75, 0x6e, 0x6b]);

/**
 * The bytes encodeFrame({Chunk: chunk}) puts before the chunk's own bytes: the frame's length, the map
 * head, and the byte string's head. Sending this and then the chunk as it is saves two copies of it.
 */
export function chunkFrameHead(chunkLength: number): Uint8Array {
  assert(Number.isSafeInteger(chunkLength) && chunkLength >= 0 && chunkLength <= 0xffffffff, "chunk length fits in u32");
  const strHead = chunkLength < 24 ? 1 : chunkLength < 0x100 ? 2 : chunkLength < 0x10000 ? 3 : 5;
  const out = new Uint8Array(4 + CHUNK_MAP_HEAD.length + strHead);
  const view = new DataView(out.buffer);
  view.setUint32(0, CHUNK_MAP_HEAD.length + strHead + chunkLength);
  out.set(CHUNK_MAP_HEAD, 4);
  const at = 4 + CHUNK_MAP_HEAD.length;
  if (strHead === 1) out[at] = 0x40 | chunkLength;
  else if (strHead === 2) {
    out[at] = 0x58;
    out[at + 1] = chunkLength;
  } else if (strHead === 3) {
    out[at] = 0x59;
    view.setUint16(at + 1, chunkLength);
  } else {
    out[at] = 0x5a;
    view.setUint32(at + 1, chunkLength);
  }
  return out;
}

/** Where the payload of a {Chunk} frame of `len` bytes starting with `head` lies, if the frame is one. */
function chunkPayloadAt(head: Uint8Array, len: number): { at: number; length: number } | undefined {
  const m = CHUNK_MAP_HEAD.length;
  if (head.length < m + 1) return undefined;
  for (let i = 0; i < m; i++) if (head[i] !== CHUNK_MAP_HEAD[i]) return undefined;
  const b = head[m]!;
  let at: number;
  let length: number;
  if (b >= 0x40 && b < 0x58) [at, length] = [m + 1, b - 0x40];
  else if (b === 0x58 && head.length >= m + 2) [at, length] = [m + 2, head[m + 1]!];
  else if (b === 0x59 && head.length >= m + 3) [at, length] = [m + 3, (head[m + 1]! << 8) | head[m + 2]!];
  else if (b === 0x5a && head.length >= m + 5) [at, length] = [m + 5, new DataView(head.buffer, head.byteOffset + m + 1, 4).getUint32(0)];
  else return undefined;
  return at + length === len ? { at, length } : undefined;
}

/** Longest head chunkPayloadAt looks at: the map head and a byte string head of 5 bytes. */
const CHUNK_HEAD_MAX = CHUNK_MAP_HEAD.length + 5;

/**
 * Reads whole frames from a stream; null means the peer's FIN fell on a frame boundary.
 *
 * The stream's chunks are the session's copies, this reader's alone: one copied whole into a frame is
 * released at once. A {Chunk} frame's bytes come out as a buffer of their own (not a view of a frame),
 * which the last consumer may release when done with it (lib/release.ts).
 */
export class FrameReader {
  private readonly stream: MuxStream;
  private readonly maxFrame: number;
  /** What is left of each chunk read, the chunk itself, and whether a view of it went out. */
  private queue: { rest: Uint8Array; whole: Uint8Array; viewed: boolean }[] = [];
  private have = 0;

  constructor(stream: MuxStream, maxFrame = DEFAULT_MAX_RPC_FRAME) {
    this.stream = stream;
    this.maxFrame = maxFrame;
  }

  /** The next frame; `max` bounds this one (a request header has a smaller limit than data frames). */
  async next(max = this.maxFrame): Promise<unknown | null> {
    if (!(await this.fill(4))) {
      if (this.have === 0) return null;
      throw new RpcError("ABORTED", "stream closed in the middle of a frame");
    }
    const head = this.peek(4);
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    this.skip(4);
    if (len > max) throw new RpcError("TOO_LARGE", `rpc frame of ${len} bytes exceeds the limit of ${max}`);
    if (!(await this.fill(len))) throw new RpcError("ABORTED", "stream closed in the middle of a frame");
    const chunk = chunkPayloadAt(this.peek(Math.min(len, CHUNK_HEAD_MAX)), len);
    if (chunk !== undefined) {
      this.skip(chunk.at);
      return { Chunk: this.take(chunk.length, true) };
    }
    const body = this.take(len);
    try {
      return decode(body);
    } catch (e) {
      throw new RpcError("BAD_REQUEST", `malformed CBOR frame: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async fill(n: number): Promise<boolean> {
    while (this.have < n) {
      let c: Uint8Array | null;
      try {
        c = await this.stream.read();
      } catch (e) {
        if (e instanceof StreamClosedError) throw new RpcError("ABORTED", e.message);
        throw e;
      }
      if (c === null) return false;
      if (c.length === 0) continue;
      this.queue.push({ rest: c, whole: c, viewed: false });
      this.have += c.length;
    }
    return true;
  }

  /** The next n buffered bytes without consuming them, for a look only: a view, or a copy across chunks. */
  private peek(n: number): Uint8Array {
    const first = this.queue[0];
    if (n === 0 || first === undefined) return new Uint8Array(0);
    if (first.rest.length >= n) return first.rest.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const e of this.queue) {
      if (at === n) break;
      const k = Math.min(e.rest.length, n - at);
      out.set(e.rest.subarray(0, k), at);
      at += k;
    }
    return out;
  }

  /** Consume n buffered bytes, handing nothing out. */
  private skip(n: number): void {
    assert(n <= this.have, "skip within what is buffered");
    this.have -= n;
    while (n > 0) {
      const e = this.queue[0]!;
      const k = Math.min(e.rest.length, n);
      n -= k;
      if (k === e.rest.length) this.usedUp();
      else e.rest = e.rest.subarray(k);
    }
  }

  /** Drop the first chunk, all of it consumed; released unless a view of it went out. */
  private usedUp(): void {
    const e = this.queue.shift()!;
    if (!e.viewed) release(e.whole);
  }

  /**
   * Consume n buffered bytes: a view when they sit in one chunk (unless `copy`), else a new buffer. A
   * chunk used up with no view of it handed out is released: its memory serves the next read.
   */
  private take(n: number, copy = false): Uint8Array {
    assert(n <= this.have, "take within what is buffered");
    if (n === 0) return new Uint8Array(0);
    const first = this.queue[0]!;
    let out: Uint8Array;
    if (first.rest.length >= n && !copy) {
      out = first.rest.subarray(0, n);
      first.viewed = true;
      if (first.rest.length === n) this.queue.shift();
      else first.rest = first.rest.subarray(n);
    } else {
      out = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const e = this.queue[0]!;
        const k = Math.min(e.rest.length, n - at);
        out.set(e.rest.subarray(0, k), at);
        at += k;
        if (k === e.rest.length) this.usedUp();
        else e.rest = e.rest.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }
}
