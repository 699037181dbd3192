// A CBOR encoder for snapshot records that writes straight into the writer's block buffer: the same
// bytes lib/codec's cbor-x encoder produces (tested byte for byte), for the plain values state rows are
// made of, without cbor-x's per-call buffer management and the copy of its result into the block.
// Anything else (typed arrays, bigints, class instances, maps of 65536+ keys) is left to cbor-x.

import { assert } from "../lib/assert.ts";

/** What encodeInto returns when the record does not fit in the space it was given. */
export const NO_ROOM = -1;
/** What encodeInto returns for a value it does not encode like cbor-x would: the caller uses cbor-x. */
export const UNSUPPORTED = -2;

/** Nesting deeper than this is left to cbor-x (state rows are two or three levels deep). */
const MAX_DEPTH = 16;
/** Below this many UTF-16 units cbor-x encodes a string with its own loop (lone surrogates kept as CESU bytes); mirrored. */
const SHORT_STRING = 0x40;

class Unsupported {}
class NoRoom {}
const UNSUPPORTED_SIGNAL = new Unsupported();
const NO_ROOM_SIGNAL = new NoRoom();

export class RecordEncoder {
  private out: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.out.buffer);
  private buffer: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;

  /**
   * Encode `{t, v}` (as codec.encode({t, v}) would) into `out` from `at`, using no byte at or past `end`.
   * Returns the position after the record, NO_ROOM if it does not fit (bytes from `at` are then
   * garbage), or UNSUPPORTED if it holds a value this encoder does not mirror cbor-x for.
   */
  encodeInto(t: string, v: unknown, out: Uint8Array, at: number, end: number): number {
    assert(at >= 0 && at <= end && end <= out.length, "encode range inside the buffer");
    if (out !== this.out) {
      this.out = out;
      this.view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      this.buffer = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
    this.pos = at;
    this.end = end;
    try {
      this.room(7);
      // {t, v}: a map-16 head (cbor-x always reserves one), then "t", t, "v", v.
      out[this.pos++] = 0xb9;
      out[this.pos++] = 0;
      out[this.pos++] = 2;
      out[this.pos++] = 0x61;
      out[this.pos++] = 0x74;
      this.string(t);
      this.room(2);
      out[this.pos++] = 0x61;
      out[this.pos++] = 0x76;
      this.value(v, 0);
      return this.pos;
    } catch (e) {
      if (e === NO_ROOM_SIGNAL) return NO_ROOM;
      if (e === UNSUPPORTED_SIGNAL) return UNSUPPORTED;
      throw e;
    }
  }

  private room(n: number): void {
    if (this.pos + n > this.end) throw NO_ROOM_SIGNAL;
  }

  /** A CBOR head: major type `major` (0..7 << 5) with argument `n` < 2^32, minimal. */
  private head(major: number, n: number): void {
    const out = this.out;
    if (n < 24) {
      this.room(1);
      out[this.pos++] = major | n;
    } else if (n < 0x100) {
      this.room(2);
      out[this.pos++] = major | 24;
      out[this.pos++] = n;
    } else if (n < 0x10000) {
      this.room(3);
      out[this.pos++] = major | 25;
      out[this.pos++] = n >> 8;
      out[this.pos++] = n & 0xff;
    } else {
      this.room(5);
      out[this.pos++] = major | 26;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  private value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        return this.string(v);
      case "number":
        return this.number(v);
      case "boolean":
        this.room(1);
        this.out[this.pos++] = v ? 0xf5 : 0xf4;
        return;
      case "undefined":
        this.room(1);
        this.out[this.pos++] = 0xf7;
        return;
      case "object":
        if (v === null) {
          this.room(1);
          this.out[this.pos++] = 0xf6;
          return;
        }
        if (depth >= MAX_DEPTH) throw UNSUPPORTED_SIGNAL;
        if (Array.isArray(v) && (v as { constructor: unknown }).constructor === Array) {
          this.head(0x80, v.length);
          for (let i = 0; i < v.length; i++) this.value(v[i], depth + 1);
          return;
        }
        return this.object(v as Record<string, unknown>, depth);
      default:
        throw UNSUPPORTED_SIGNAL;
    }
  }

  private object(o: Record<string, unknown>, depth: number): void {
    // cbor-x dispatches on `constructor` and filters keys with o.hasOwnProperty: an own key of either
    // name, or another prototype, changes what it does, so such objects go to cbor-x itself.
    if (Object.getPrototypeOf(o) !== Object.prototype || o.constructor !== Object || Object.hasOwn(o, "hasOwnProperty"))
      throw UNSUPPORTED_SIGNAL;
    this.room(3);
    const out = this.out;
    out[this.pos] = 0xb9;
    const sizeAt = this.pos + 1;
    this.pos += 3;
    let size = 0;
    for (const k in o) {
      if (!Object.hasOwn(o, k)) continue;
      this.string(k);
      this.value(o[k], depth + 1);
      size++;
    }
    // cbor-x widens the head past 65535 keys; not mirrored.
    if (size >= 0x10000) throw UNSUPPORTED_SIGNAL;
    out[sizeAt] = size >> 8;
    out[sizeAt + 1] = size & 0xff;
  }

  private number(n: number): void {
    if (n >>> 0 === n) return this.head(0x00, n);
    if (n >> 0 === n) return this.head(0x20, ~n);
    if (n < 0 && n >= -0x100000000 && Math.floor(n) === n) {
      this.room(5);
      this.out[this.pos++] = 0x3a;
      this.view.setUint32(this.pos, -1 - n);
      this.pos += 4;
      return;
    }
    this.room(9);
    this.out[this.pos++] = 0xfb;
    this.view.setFloat64(this.pos, n);
    this.pos += 8;
  }

  private string(s: string): void {
    const len = s.length;
    if (len < SHORT_STRING) {
      // Byte length first (cbor-x's loop, including its CESU-8 bytes for a lone surrogate), then the bytes.
      let bytes = 0;
      let ascii = true;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80) bytes++;
        else {
          ascii = false;
          if (c < 0x800) bytes += 2;
          else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
            bytes += 4;
            i++;
          } else bytes += 3;
        }
      }
      this.head(0x60, bytes);
      this.room(bytes);
      const out = this.out;
      let p = this.pos;
      if (ascii) {
        for (let i = 0; i < len; i++) out[p++] = s.charCodeAt(i);
      } else {
        for (let i = 0; i < len; i++) {
          let c = s.charCodeAt(i);
          if (c < 0x80) out[p++] = c;
          else if (c < 0x800) {
            out[p++] = (c >> 6) | 0xc0;
            out[p++] = (c & 0x3f) | 0x80;
          } else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
            const c2 = s.charCodeAt(i + 1);
            c = 0x10000 + ((c & 0x03ff) << 10) + (c2 & 0x03ff);
            i++;
            out[p++] = (c >> 18) | 0xf0;
            out[p++] = ((c >> 12) & 0x3f) | 0x80;
            out[p++] = ((c >> 6) & 0x3f) | 0x80;
            out[p++] = (c & 0x3f) | 0x80;
          } else {
            out[p++] = (c >> 12) | 0xe0;
            out[p++] = ((c >> 6) & 0x3f) | 0x80;
            out[p++] = (c & 0x3f) | 0x80;
          }
        }
      }
      this.pos = p;
      return;
    }
    // Longer strings: UTF-8 (a lone surrogate as U+FFFD, as cbor-x's utf8Write path does) written after
    // a head sized for the worst case, moved back if the real length needs a shorter head.
    const maxBytes = len * 3;
    let bytes: number;
    if (this.pos + 5 + maxBytes <= this.end) {
      const headGuess = maxBytes < 0x100 ? 2 : maxBytes < 0x10000 ? 3 : 5;
      bytes = this.buffer.write(s, this.pos + headGuess, maxBytes, "utf8");
      const headReal = bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
      if (headReal !== headGuess) this.out.copyWithin(this.pos + headReal, this.pos + headGuess, this.pos + headGuess + bytes);
    } else {
      // Near the end of the space: measure exactly rather than refuse a string that would fit.
      bytes = Buffer.byteLength(s, "utf8");
      const headReal = bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
      this.room(headReal + bytes);
      const written = this.buffer.write(s, this.pos + headReal, bytes, "utf8");
      assert(written === bytes, "Buffer.write wrote the measured length");
    }
    this.head(0x60, bytes);
    this.pos += bytes;
  }
}
