// RPC framing on a mux stream: each message is a u32 big-endian length then
// one CBOR item. The length bounds a frame before any of it is decoded.
import { assert } from "../lib/assert.ts";
import { decode, encode } from "../lib/codec.ts";
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

/** Reads whole frames from a stream; null means the peer's FIN fell on a frame boundary. */
export class FrameReader {
  private readonly stream: MuxStream;
  private readonly maxFrame: number;
  private chunks: Uint8Array[] = [];
  private have = 0;

  constructor(stream: MuxStream, maxFrame = DEFAULT_MAX_RPC_FRAME) {
    this.stream = stream;
    this.maxFrame = maxFrame;
  }

  async next(): Promise<unknown | null> {
    if (!(await this.fill(4))) {
      if (this.have === 0) return null;
      throw new RpcError("ABORTED", "stream closed in the middle of a frame");
    }
    const head = this.take(4);
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    if (len > this.maxFrame) throw new RpcError("TOO_LARGE", `rpc frame of ${len} bytes exceeds the limit of ${this.maxFrame}`);
    if (!(await this.fill(len))) throw new RpcError("ABORTED", "stream closed in the middle of a frame");
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
      this.chunks.push(c);
      this.have += c.length;
    }
    return true;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        out.set(c.subarray(0, k), at);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }
}
