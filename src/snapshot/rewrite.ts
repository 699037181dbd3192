// A new header on a verified snapshot file, without re-encoding its records: the blocks and the end
// frame are copied byte for byte, and the trailer becomes the SHA-256 of the new bytes. The raft
// snapshot taken right after a restore holds exactly the staged file's records, and re-encoding them
// (decode-free, but zstd and CBOR over every record) would cost every server seconds of CPU at once for
// a large state; this is a copy and a hash. The input is checked as it streams — its frames' CRC32s, and
// its own SHA-256 trailer unless the caller verified the file's digest already — so a file damaged since
// it was verified fails before its end is produced, and the caller discards what it wrote.
import { assert } from "../lib/assert.ts";
import { concatBytes } from "../lib/bytes.ts";
import { decode, encode } from "../lib/codec.ts";
import {
  type FrameHeader,
  FORMAT_VERSION,
  formatVersionOf,
  FRAME_HEADER_BYTES,
  FrameKind,
  MAGIC,
  MAX_BLOCK_RAW_BYTES,
  MAX_BLOCK_STORED_BYTES,
  MAX_END_BYTES,
  MAX_HEADER_BYTES,
  PREAMBLE_BYTES,
  type SnapshotHeader,
  SnapshotFormatError,
  TRAILER_BYTES,
  crc32,
  encodeFrameHeader,
  encodePreamble,
  frameKindName,
  parseFrameHeader,
  validateHeader,
} from "./format.ts";
import type { WriterHeader } from "./writer.ts";

export interface RewriteOptions {
  /**
   * This server verified the input file's SHA-256 when it wrote or read it (a restore's staged file):
   * the input is checked by its frames' CRC32s only, as the reader does given `verifiedSha256`, and
   * not hashed again; its old trailer is not compared (the output gets a new one).
   */
  inputVerified?: boolean;
  /** Filled in once the last byte is produced: the output's size and SHA-256 (hex, trailer included). */
  result?: RewriteResult;
}

export interface RewriteResult {
  size: number;
  sha256: string;
}

/**
 * The file of `chunks` with its header replaced by `next(old header)`. `next` may throw to refuse
 * (say, when the old header's counts are not what the caller holds); the stream then fails before
 * producing a byte. After the header, the source's chunks come out as they are (the same objects), so
 * the consumer may release one it has written (lib/release.ts) only if the source's chunks are its alone.
 */
export async function* rewriteSnapshotHeader(
  chunks: AsyncIterable<Uint8Array>,
  next: (old: SnapshotHeader) => WriterHeader,
  opts: RewriteOptions = {},
): AsyncGenerator<Uint8Array> {
  const inHash = opts.inputVerified ? undefined : new Bun.CryptoHasher("sha256");
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
    inHash?.update(head.subarray(0, headEnd));
    outHash.update(newHead);
    let size = newHead.length;
    yield newHead;

    // ---- the body, verbatim, its frames walked as they pass; the old trailer held back ----
    // Each source chunk goes out whole unless the old trailer starts in it: whole, the consumer can
    // release a chunk the source gave it alone (lib/release.ts), where a view of part of it would leave
    // its memory to the GC and the next chunk to fresh pages.
    const walk = new BodyWalk(headEnd);
    const trailer = new Uint8Array(TRAILER_BYTES);
    let c: Uint8Array | undefined = head.subarray(headEnd);
    while (c !== undefined) {
      const from = walk.trailerSeen;
      const cut = walk.feed(c);
      trailer.set(c.subarray(cut), from);
      const body = cut === c.length ? c : c.subarray(0, cut);
      if (body.length > 0) {
        inHash?.update(body);
        outHash.update(body);
        size += body.length;
        yield body;
      }
      const r = await it.next();
      c = r.done ? undefined : r.value;
    }
    walk.finish();
    if (inHash) {
      const want = new Uint8Array(inHash.digest());
      for (let i = 0; i < TRAILER_BYTES; i++) {
        if (trailer[i] !== want[i])
          throw new SnapshotFormatError("corrupt snapshot: the SHA-256 trailer does not match the file (damaged since it was verified)");
      }
    }
    const newTrailer = new Uint8Array(outHash.copy().digest());
    outHash.update(newTrailer);
    if (opts.result) {
      opts.result.size = size + TRAILER_BYTES;
      opts.result.sha256 = outHash.digest("hex");
    }
    yield newTrailer;
  } finally {
    await it.return?.();
  }
}

/**
 * The frames after the header frame, walked as their bytes stream past in chunks of any size: each frame
 * header's own CRC, the kinds in order (blocks, then one end frame) within their limits, and each
 * payload's CRC32, carried across chunk boundaries. It tells where the trailer starts.
 */
class BodyWalk {
  private readonly frameHead = new Uint8Array(FRAME_HEADER_BYTES);
  private headFill = 0;
  /** The frame whose payload is being read, once its header is whole. */
  private frame: FrameHeader | undefined;
  private frameAt = 0;
  private left = 0;
  private crc = 0;
  private ended = false;
  /** Bytes of the trailer seen so far (after the end frame). */
  trailerSeen = 0;

  /** `at`: the file offset of the first byte fed. */
  constructor(private at: number) {}

  /** Walk `c`: how many of its bytes come before the trailer. */
  feed(c: Uint8Array): number {
    let i = 0;
    while (i < c.length && !this.ended) {
      if (this.frame === undefined) {
        const n = Math.min(FRAME_HEADER_BYTES - this.headFill, c.length - i);
        this.frameHead.set(c.subarray(i, i + n), this.headFill);
        this.headFill += n;
        i += n;
        if (this.headFill === FRAME_HEADER_BYTES) this.begin(this.at + i - FRAME_HEADER_BYTES);
      } else {
        const n = Math.min(this.left, c.length - i);
        this.crc = crc32(c.subarray(i, i + n), this.crc);
        this.left -= n;
        i += n;
        if (this.left === 0) this.done();
      }
    }
    this.trailerSeen += c.length - i;
    if (this.trailerSeen > TRAILER_BYTES) {
      throw new SnapshotFormatError(
        `${this.trailerSeen - TRAILER_BYTES} unexpected trailing bytes after the end of the snapshot at byte ${this.at + c.length - (this.trailerSeen - TRAILER_BYTES)}`,
      );
    }
    this.at += c.length;
    return i;
  }

  /** Every frame whole and the trailer complete, or the file is truncated. */
  finish(): void {
    if (!this.ended) throw new SnapshotFormatError(`snapshot truncated at byte ${this.at}: no end frame`);
    if (this.trailerSeen < TRAILER_BYTES) throw new SnapshotFormatError(`snapshot truncated at byte ${this.at}: no trailer`);
  }

  private begin(at: number): void {
    const fh = parseFrameHeader(this.frameHead, at);
    const limit = fh.kind === FrameKind.Block ? MAX_BLOCK_STORED_BYTES : fh.kind === FrameKind.End ? MAX_END_BYTES : -1;
    if (limit < 0) throw new SnapshotFormatError(`corrupt snapshot: unexpected ${frameKindName(fh.kind)} frame at byte ${at}`);
    if (fh.stored > limit || (fh.kind === FrameKind.Block && fh.raw > MAX_BLOCK_RAW_BYTES))
      throw new SnapshotFormatError(`corrupt snapshot: ${frameKindName(fh.kind)} frame at byte ${at} is larger than allowed`);
    this.frame = fh;
    this.frameAt = at;
    this.left = fh.stored;
    this.crc = 0;
    if (this.left === 0) this.done();
  }

  private done(): void {
    const fh = this.frame;
    assert(fh !== undefined, "a payload ends inside a frame");
    if (this.crc !== fh.payloadCrc)
      throw new SnapshotFormatError(`corrupt snapshot: ${frameKindName(fh.kind)} frame at byte ${this.frameAt} fails its checksum (CRC32)`);
    this.ended = fh.kind === FrameKind.End;
    this.frame = undefined;
    this.headFill = 0;
  }
}
