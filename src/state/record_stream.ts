// The persist stream's byte form: each SnapshotRecord is one CBOR item behind a
// 4-byte big-endian length, packed into bounded chunks. Decoding takes chunks cut
// anywhere and holds at most one record plus one chunk in memory.
import { decode, encode } from "../lib/codec.ts";
import { RestoreError } from "./restore.ts";
import type { SnapshotRecord } from "./tables.ts";

/** Largest encoded record accepted: 64 KiB of items plus the rest of the row, with room to spare. */
export const MAX_RECORD_BYTES = 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Encode records into chunks of about `chunkBytes` (a chunk exceeds it only to hold one large record). */
export function* encodeRecordStream(records: Iterable<SnapshotRecord>, chunkBytes = DEFAULT_CHUNK_BYTES): Generator<Uint8Array, void, undefined> {
  let buf = new Uint8Array(chunkBytes);
  let used = 0;
  for (const rec of records) {
    const body = encode(rec);
    if (body.length > MAX_RECORD_BYTES) throw new RestoreError(`a ${rec.t} record encodes to ${body.length} bytes; the limit is ${MAX_RECORD_BYTES}`);
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

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Decode a stream produced by encodeRecordStream; throws RestoreError on a bad length, bad CBOR or a cut-off tail. */
export async function* decodeRecordStream(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<unknown, void, undefined> {
  // Chunks are only joined once a whole record is available, so tiny chunks cost no quadratic copying.
  const parts: Uint8Array[] = [];
  let avail = 0;
  let need = 4;
  let offset = 0; // stream position of parts[0], for messages
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    parts.push(chunk);
    avail += chunk.length;
    if (avail < need) continue;
    const data = concat(parts, avail);
    parts.length = 0;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let at = 0;
    need = 4;
    while (data.length - at >= 4) {
      const len = view.getUint32(at);
      if (len === 0 || len > MAX_RECORD_BYTES) {
        throw new RestoreError(`record at byte ${offset + at} claims ${len} bytes (allowed 1..${MAX_RECORD_BYTES})`);
      }
      if (data.length - at - 4 < len) {
        need = 4 + len;
        break;
      }
      let rec: unknown;
      try {
        // slice: decoded byte strings would otherwise be views into the caller's chunk.
        rec = decode(data.slice(at + 4, at + 4 + len));
      } catch (e) {
        throw new RestoreError(`record at byte ${offset + at} is not valid CBOR: ${e instanceof Error ? e.message : String(e)}`);
      }
      yield rec;
      at += 4 + len;
    }
    offset += at;
    avail = data.length - at;
    if (avail > 0) parts.push(data.slice(at));
  }
  if (avail > 0) throw new RestoreError(`stream ends inside a record at byte ${offset} (${avail} bytes left over)`);
}
