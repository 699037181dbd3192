// The persist stream's byte form: each SnapshotRecord is one CBOR item behind a
// 4-byte big-endian length, packed into bounded chunks. Decoding takes chunks cut
// anywhere and holds at most one record plus one chunk in memory.
import { concatBytes } from "../lib/bytes.ts";
import { decode, encode } from "../lib/codec.ts";
import { RestoreError } from "./restore.ts";
import type { SnapshotRecord } from "./tables.ts";

/** Largest encoded record accepted: 64 KiB of items plus the rest of the row, with room to spare. */
export const MAX_RECORD_BYTES = 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Encode records into chunks of about `chunkBytes` (a chunk exceeds it only to hold one large record). */
export function* encodeRecordStream(
  records: Iterable<SnapshotRecord>,
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Generator<Uint8Array, void, undefined> {
  let buf = new Uint8Array(chunkBytes);
  let used = 0;
  for (const rec of records) {
    const body = encode(rec);
    if (body.length > MAX_RECORD_BYTES)
      throw new RestoreError(`a ${rec.t} record encodes to ${body.length} bytes; the limit is ${MAX_RECORD_BYTES}`);
    const need = 4 + body.length;
    if (used > 0 && used + need > buf.length) {
      yield buf.subarray(0, used);
      buf = new Uint8Array(Math.max(chunkBytes, need));
      used = 0;
    } else if (need > buf.length) {
      buf = new Uint8Array(need);
    }
    new DataView(buf.buffer, buf.byteOffset).setUint32(used, body.length);
    buf.set(body, used + 4);
    used += need;
  }
  if (used > 0) yield buf.subarray(0, used);
}

/**
 * Incremental decoder: push chunks cut anywhere, get back the records they
 * complete. Chunks are only joined once a whole record is available, so tiny
 * chunks cost no quadratic copying; memory is one record plus one chunk.
 */
export class RecordDecoder {
  private readonly parts: Uint8Array[] = [];
  private avail = 0;
  private need = 4;
  /** Stream position of parts[0], for messages. */
  private offset = 0;

  push(chunk: Uint8Array): unknown[] {
    const out: unknown[] = [];
    if (chunk.length === 0) return out;
    this.parts.push(chunk);
    this.avail += chunk.length;
    if (this.avail < this.need) return out;
    const data = this.parts.length === 1 ? (this.parts[0] as Uint8Array) : concatBytes(this.parts);
    this.parts.length = 0;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let at = 0;
    this.need = 4;
    while (data.length - at >= 4) {
      const len = view.getUint32(at);
      if (len === 0 || len > MAX_RECORD_BYTES) {
        throw new RestoreError(`record at byte ${this.offset + at} claims ${len} bytes (allowed 1..${MAX_RECORD_BYTES})`);
      }
      if (data.length - at - 4 < len) {
        this.need = 4 + len;
        break;
      }
      try {
        // slice: decoded byte strings would otherwise be views into the caller's chunk.
        out.push(decode(data.slice(at + 4, at + 4 + len)));
      } catch (e) {
        throw new RestoreError(`record at byte ${this.offset + at} is not valid CBOR: ${e instanceof Error ? e.message : String(e)}`);
      }
      at += 4 + len;
    }
    this.offset += at;
    this.avail = data.length - at;
    if (this.avail > 0) this.parts.push(data.slice(at));
    return out;
  }

  /** The stream is over: throws if it stopped inside a record. */
  end(): void {
    if (this.avail > 0) throw new RestoreError(`stream ends inside a record at byte ${this.offset} (${this.avail} bytes left over)`);
  }
}

/** Decode a stream produced by encodeRecordStream; throws RestoreError on a bad length, bad CBOR or a cut-off tail. */
export async function* decodeRecordStream(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<unknown, void, undefined> {
  const d = new RecordDecoder();
  for await (const chunk of chunks) yield* d.push(chunk);
  d.end();
}
