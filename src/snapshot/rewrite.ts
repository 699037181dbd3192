// A new header on a verified snapshot file, without re-encoding its records: the blocks and the end
// frame are copied byte for byte, and the trailer becomes the SHA-256 of the new bytes. The raft
// snapshot taken right after a restore holds exactly the staged file's records, and re-encoding them
// (decode-free, but zstd and CBOR over every record) would cost every server seconds of CPU at once for
// a large state; this is a copy and a hash. The input's own trailer is checked as it streams: a file
// damaged since it was verified fails at its end, and the caller discards what it wrote.
import { concatBytes } from "../lib/bytes.ts";
import { decode, encode } from "../lib/codec.ts";
import {
  FORMAT_VERSION,
  formatVersionOf,
  FRAME_HEADER_BYTES,
  FrameKind,
  MAGIC,
  MAX_HEADER_BYTES,
  PREAMBLE_BYTES,
  type SnapshotHeader,
  SnapshotFormatError,
  TRAILER_BYTES,
  crc32,
  encodeFrameHeader,
  encodePreamble,
  parseFrameHeader,
  validateHeader,
} from "./format.ts";
import type { WriterHeader } from "./writer.ts";

/**
 * The file of `chunks` with its header replaced by `next(old header)`. `next` may throw to refuse
 * (say, when the old header's counts are not what the caller holds); the stream then fails before
 * producing a byte. After the header, the source's chunks come out as they are (the same objects), so
 * the consumer may release one it has written (lib/release.ts) only if the source's chunks are its alone.
 */
export async function* rewriteSnapshotHeader(
  chunks: AsyncIterable<Uint8Array>,
  next: (old: SnapshotHeader) => WriterHeader,
): AsyncGenerator<Uint8Array> {
  const inHash = new Bun.CryptoHasher("sha256");
  const outHash = new Bun.CryptoHasher("sha256");
  const it = chunks[Symbol.asyncIterator]();
  // ---- the old preamble and header frame, gathered whole (bounded by MAX_HEADER_BYTES) ----
  let head = new Uint8Array(0);
  const need = async (n: number, what: string): Promise<void> => {
    while (head.length < n) {
      const r = await it.next();
      if (r.done) throw new SnapshotFormatError(`snapshot truncated at byte ${head.length}: ${what} is incomplete`);
      head = concatBytes([head, r.value]);
    }
  };
  try {
    await need(PREAMBLE_BYTES + FRAME_HEADER_BYTES, "the preamble and header frame");
    const pre = new DataView(head.buffer, head.byteOffset, PREAMBLE_BYTES);
    for (let i = 0; i < MAGIC.length; i++)
      if (head[i] !== MAGIC[i]) throw new SnapshotFormatError("not a snapshot file: no edgenode snapshot magic");
    if (pre.getUint32(12) !== crc32(head.subarray(0, 12)))
      throw new SnapshotFormatError("corrupt snapshot: the preamble fails its checksum (CRC32)");
    const version = pre.getUint32(8);
    if (version < 1 || version > FORMAT_VERSION)
      throw new SnapshotFormatError(`snapshot format version ${version}: only versions 1 to ${FORMAT_VERSION} are rewritten in place`);
    const fh = parseFrameHeader(head.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + FRAME_HEADER_BYTES), PREAMBLE_BYTES);
    if (fh.kind !== FrameKind.Header || fh.stored > MAX_HEADER_BYTES || fh.raw !== fh.stored)
      throw new SnapshotFormatError("corrupt snapshot: bad header frame");
    const headEnd = PREAMBLE_BYTES + FRAME_HEADER_BYTES + fh.stored;
    await need(headEnd, "the header frame's payload");
    const payload = head.subarray(PREAMBLE_BYTES + FRAME_HEADER_BYTES, headEnd);
    if (crc32(payload) !== fh.payloadCrc) throw new SnapshotFormatError("corrupt snapshot: the header frame fails its checksum (CRC32)");
    const old = validateHeader(decode(payload));

    const nextHeader = next(old);
    const header = validateHeader({ ...nextHeader, formatVersion: formatVersionOf(nextHeader) });
    const fresh = encode(header);
    const newHead = new Uint8Array(PREAMBLE_BYTES + FRAME_HEADER_BYTES + fresh.length);
    newHead.set(encodePreamble(header.formatVersion), 0);
    newHead.set(encodeFrameHeader(FrameKind.Header, fresh, fresh.length), PREAMBLE_BYTES);
    newHead.set(fresh, PREAMBLE_BYTES + FRAME_HEADER_BYTES);
    inHash.update(head.subarray(0, headEnd));
    outHash.update(newHead);
    yield newHead;

    // ---- the body, verbatim, holding back the last TRAILER_BYTES seen (the old trailer) ----
    // Each source chunk goes out whole, one chunk late (the next one tells whether it holds part of the
    // trailer): whole, the consumer can release a chunk the source gave it alone (lib/release.ts), where a
    // view of part of it would leave its memory to the GC and the next chunk to fresh pages.
    const emit = (bytes: Uint8Array): Uint8Array => {
      inHash.update(bytes);
      outHash.update(bytes);
      return bytes;
    };
    let pending: Uint8Array = head.subarray(headEnd);
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const c = r.value;
      if (c.length >= TRAILER_BYTES) {
        if (pending.length > 0) yield emit(pending);
        pending = c;
      } else {
        // A small chunk (rare): joined with what is held, all but the last TRAILER_BYTES go out now.
        const joined = concatBytes([pending, c]);
        if (joined.length > TRAILER_BYTES) yield emit(joined.subarray(0, joined.length - TRAILER_BYTES));
        pending = joined.length > TRAILER_BYTES ? joined.subarray(joined.length - TRAILER_BYTES) : joined;
      }
    }
    if (pending.length < TRAILER_BYTES) throw new SnapshotFormatError("snapshot truncated: no trailer");
    if (pending.length > TRAILER_BYTES) yield emit(pending.subarray(0, pending.length - TRAILER_BYTES));
    const hold = pending.subarray(pending.length - TRAILER_BYTES);
    const want = new Uint8Array(inHash.digest());
    for (let i = 0; i < TRAILER_BYTES; i++) {
      if (hold[i] !== want[i])
        throw new SnapshotFormatError("corrupt snapshot: the SHA-256 trailer does not match the file (damaged since it was verified)");
    }
    yield new Uint8Array(outHash.digest());
  } finally {
    await it.return?.();
  }
}
