// Read a snapshot file from a stream of byte chunks, checking as it goes: preamble and version, every
// frame's CRCs, every record's shape and table, counts against the header, then the SHA-256 trailer and
// that nothing follows it. Memory is bounded by one block; the whole-file checks land at the end, so a
// caller that must not act on unverified data runs verifySnapshot first.

import { open } from "node:fs/promises";
import { assert } from "../lib/assert.ts";
import { decodeCopying as decode, decodeMultiple } from "../lib/codec.ts";
import { release } from "../lib/release.ts";
import { zstdFrameContentSize } from "./zstd_frame.ts";
import {
  FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  type FrameHeader,
  FrameKind,
  MAGIC,
  MAX_BLOCK_RAW_BYTES,
  MAX_BLOCK_STORED_BYTES,
  MAX_END_BYTES,
  MAX_HEADER_BYTES,
  PREAMBLE_BYTES,
  type SnapshotHeader,
  type SnapshotRecord,
  SnapshotFormatError,
  TRAILER_BYTES,
  crc32,
  frameKindName,
  parseFrameHeader,
  validateEnd,
  validateHeader,
} from "./format.ts";

/**
 * Pulls chunks on demand and hands out exact byte counts, hashing what it hands out while asked to.
 * What take/peek return is valid until the next call on the source when it owns its chunks.
 */
class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private readonly queue: Uint8Array[] = [];
  /** The chunk each queue entry is (the rest of): what is released once the entry is used up. */
  private readonly origins: Uint8Array[] = [];
  private buffered = 0;
  private done = false;
  /** Bytes handed out so far: the file offset of the next byte. */
  offset = 0;
  readonly hasher = new Bun.CryptoHasher("sha256");
  hashing = true;
  /** Chunks used up, released at the next call (a view of one may still be in the caller's hands until then). */
  private readonly spent: Uint8Array[] = [];

  /** `owned`: nothing else holds the chunks once they are yielded, so each is released once used up. */
  constructor(
    chunks: AsyncIterable<Uint8Array>,
    private readonly owned = false,
  ) {
    this.it = chunks[Symbol.asyncIterator]();
  }

  private shift(): void {
    this.queue.shift();
    const c = this.origins.shift();
    if (this.owned && c !== undefined) this.spent.push(c);
  }

  private releaseSpent(): void {
    for (const c of this.spent) release(c);
    this.spent.length = 0;
  }

  /** Buffer at least n bytes; false if the stream ends first. Never buffers more than n plus one chunk. */
  async fill(n: number): Promise<boolean> {
    this.releaseSpent();
    while (this.buffered < n) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      if (!(r.value instanceof Uint8Array)) throw new TypeError("snapshot reader: chunks must be Uint8Array");
      if (r.value.length === 0) continue;
      this.queue.push(r.value);
      this.origins.push(r.value);
      this.buffered += r.value.length;
    }
    return true;
  }

  /** Bytes seen so far, consumed or buffered: the file's length if the stream has ended. */
  get seen(): number {
    return this.offset + this.buffered;
  }

  peek(n: number): Uint8Array {
    const first = this.queue[0];
    if (first && first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(Math.min(n, this.buffered));
    let at = 0;
    for (const c of this.queue) {
      if (at >= out.length) break;
      const part = c.subarray(0, out.length - at);
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Whether the last take returned a copy (the taker's alone, so it may release it) rather than a view of a chunk. */
  copied = false;

  /** Consume exactly n buffered bytes (a view when they sit in one chunk, else a copy). */
  take(n: number): Uint8Array {
    assert(n <= this.buffered, "take within what is buffered");
    this.releaseSpent();
    let out: Uint8Array;
    const first = this.queue[0];
    this.copied = false;
    if (n === 0) out = new Uint8Array(0);
    else if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.shift();
      else this.queue[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      this.copied = true;
      let at = 0;
      while (at < n) {
        const c = this.queue[0];
        assert(c !== undefined, "queued bytes cover the take");
        const want = n - at;
        if (c.length <= want) {
          out.set(c, at);
          at += c.length;
          this.shift();
        } else {
          out.set(c.subarray(0, want), at);
          this.queue[0] = c.subarray(want);
          at += want;
        }
      }
    }
    this.buffered -= n;
    this.offset += n;
    if (this.hashing) this.hasher.update(out);
    return out;
  }

  /** fill + take, or a truncation error naming what was being read. */
  async read(n: number, what: string): Promise<Uint8Array> {
    if (!(await this.fill(n))) {
      throw new SnapshotFormatError(`snapshot truncated at byte ${this.seen}: ${what} at byte ${this.offset} needs ${n} bytes`);
    }
    return this.take(n);
  }

  /** Drain the rest of the stream, returning how many bytes it held. */
  async drain(): Promise<number> {
    let n = this.buffered;
    this.queue.length = 0;
    this.origins.length = 0;
    this.buffered = 0;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else n += r.value.length;
    }
    return n;
  }

  async close(): Promise<void> {
    this.releaseSpent();
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

export interface VerifyResult {
  header: SnapshotHeader;
  /** Bytes in the whole file. */
  size: number;
  /** Hex SHA-256 of the whole file (trailer included). */
  sha256: string;
  /** The same as an HTTP `Digest` header value: "sha-256=<base64>". */
  digest: string;
  /** Records found per table (equal to header.counts, or verification would have failed). */
  counts: Record<string, number>;
  records: number;
}

function describeNotSnapshot(head: Uint8Array): string {
  let printable = 0;
  for (const b of head) if ((b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09) printable++;
  const looksText = head.length > 0 && printable === head.length;
  return `not a snapshot file: it does not start with the edgenode snapshot magic${looksText ? " (it looks like text)" : ""}`;
}

/** The registered symbol under which `records` also offers its blocks (see state/restore.ts). */
const RECORD_BATCHES = Symbol.for("edgenode.record-batches");

export interface ReadOptions {
  /**
   * Blocks decompressed on the thread pool ahead of the one being decoded: 0 decompresses inline. Each
   * adds about two blocks of memory. Overlap helps only when a second core is free.
   */
  pipeline?: number;
  /**
   * The reader owns the chunks: nothing else holds one once it is yielded (fileChunks read straight into
   * the reader), so each is released as soon as it is used up (lib/release.ts). Only inline (pipeline 0).
   */
  release?: boolean;
  /**
   * The file's SHA-256 (hex, trailer included), verified when this server wrote the file (a staged
   * restore file, hashed as it was spooled): the reader does not hash it again, and a damaged copy is
   * still found by the frames' CRC32s (every block, the header, the end frame). The result carries
   * this digest; the trailer is not compared.
   */
  verifiedSha256?: string;
}

/** Inline by default, for the writer's reason (DEFAULT_PIPELINE): reads run beside request handling. */
export const DEFAULT_READ_PIPELINE = 0;

function checkInflated(out: Uint8Array, raw: number, at: number): Uint8Array {
  if (out.length !== raw)
    throw new SnapshotFormatError(`corrupt snapshot: block at byte ${at} decompresses to ${out.length} bytes, expected ${raw}`);
  return out;
}

function inflateError(e: unknown, raw: number, at: number): SnapshotFormatError {
  // maxOutputLength guards memory against a block claiming less than it inflates to.
  return new SnapshotFormatError(
    `corrupt snapshot: block at byte ${at} does not decompress to its declared ${raw} bytes (${e instanceof Error ? e.message : String(e)})`,
  );
}

/** A block must be one zstd frame declaring exactly its raw size: Bun's decompressor takes no output bound (zstd_frame.ts). */
function checkFrame(stored: Uint8Array, raw: number, at: number): void {
  const declared = zstdFrameContentSize(stored);
  if (declared !== raw) {
    throw new SnapshotFormatError(
      `corrupt snapshot: block at byte ${at} is not one zstd frame of its declared ${raw} bytes (${declared === undefined ? "malformed, several frames or no size" : `it declares ${declared}`})`,
    );
  }
}

function decompressSync(stored: Uint8Array, raw: number, at: number): Uint8Array {
  checkFrame(stored, raw, at);
  try {
    return checkInflated(Bun.zstdDecompressSync(stored), raw, at);
  } catch (e) {
    throw e instanceof SnapshotFormatError ? e : inflateError(e, raw, at);
  }
}

async function decompressAsync(stored: Uint8Array, raw: number, at: number): Promise<Uint8Array> {
  checkFrame(stored, raw, at);
  let out: Uint8Array;
  try {
    out = await Bun.zstdDecompress(stored);
  } catch (e) {
    throw inflateError(e, raw, at);
  }
  return checkInflated(out, raw, at);
}

/** Parses one file; readHeader and batches share its position. */
class SnapshotParser {
  private readonly src: ByteSource;
  private headerPromise: Promise<SnapshotHeader> | undefined;
  private started = false;
  result: VerifyResult | undefined;

  private readonly depth: number;
  private readonly verifiedSha256: string | undefined;

  constructor(chunks: AsyncIterable<Uint8Array>, options: ReadOptions = {}) {
    this.verifiedSha256 = options.verifiedSha256;
    assert(this.verifiedSha256 === undefined || /^[0-9a-f]{64}$/.test(this.verifiedSha256), "a verified SHA-256 is 64 hex digits");
    this.depth = options.pipeline ?? DEFAULT_READ_PIPELINE;
    assert(Number.isSafeInteger(this.depth) && this.depth >= 0 && this.depth <= 8, "pipeline depth in 0..8");
    // A block decompressed on the thread pool still reads its chunk after the next take.
    assert(!options.release || this.depth === 0, "an owning reader decompresses inline");
    this.src = new ByteSource(chunks, options.release === true);
    this.src.hashing = this.verifiedSha256 === undefined;
  }

  async cancel(): Promise<void> {
    // Settle a header read in flight first, so the source is not closed under it.
    await this.headerPromise?.catch(() => undefined);
    await this.src.close();
  }

  readHeader(): Promise<SnapshotHeader> {
    this.headerPromise ??= this.parseHeader();
    return this.headerPromise;
  }

  private async parseHeader(): Promise<SnapshotHeader> {
    const src = this.src;
    const full = await src.fill(PREAMBLE_BYTES);
    const head = src.peek(PREAMBLE_BYTES);
    if (head.length === 0) throw new SnapshotFormatError("not a snapshot file: it is empty");
    for (let i = 0; i < Math.min(head.length, MAGIC.length); i++) {
      if (head[i] !== MAGIC[i]) {
        // A snapshot whose magic took a hit still carries a preamble CRC that matches the real magic.
        if (full) {
          const repaired = head.slice();
          repaired.set(MAGIC, 0);
          if (new DataView(repaired.buffer).getUint32(12) === crc32(repaired.subarray(0, 12))) {
            throw new SnapshotFormatError(`corrupt snapshot: the magic number (bytes 0-${MAGIC.length - 1}) is damaged`);
          }
        }
        throw new SnapshotFormatError(describeNotSnapshot(head));
      }
    }
    if (!full) throw new SnapshotFormatError(`snapshot truncated at byte ${src.seen}: the preamble needs ${PREAMBLE_BYTES} bytes`);
    const pre = src.take(PREAMBLE_BYTES);
    const view = new DataView(pre.buffer, pre.byteOffset, pre.byteLength);
    if (view.getUint32(12) !== crc32(pre.subarray(0, 12))) {
      throw new SnapshotFormatError(
        `corrupt snapshot: the preamble (bytes 0-${PREAMBLE_BYTES - 1}, which hold the format version) fails its checksum (CRC32)`,
      );
    }
    const version = view.getUint32(8);
    if (version > FORMAT_VERSION) {
      throw new SnapshotFormatError(
        `snapshot format version ${version} is newer than this edgenode supports (format version ${FORMAT_VERSION}); restore it with a newer edgenode`,
      );
    }
    if (version < 1)
      throw new SnapshotFormatError(
        `unsupported snapshot format version ${version} (this edgenode reads format version ${FORMAT_VERSION})`,
      );

    const at = src.offset;
    const fh = parseFrameHeader(await src.read(FRAME_HEADER_BYTES, "the header frame"), at);
    if (fh.kind !== FrameKind.Header)
      throw new SnapshotFormatError(`corrupt snapshot: expected the header frame at byte ${at}, found a ${frameKindName(fh.kind)} frame`);
    if (fh.stored > MAX_HEADER_BYTES || fh.raw !== fh.stored) {
      throw new SnapshotFormatError(
        `bad snapshot: header frame at byte ${at} is ${fh.stored} bytes (limit ${MAX_HEADER_BYTES}, raw ${fh.raw})`,
      );
    }
    const payload = await src.read(fh.stored, "the header frame's payload");
    if (crc32(payload) !== fh.payloadCrc)
      throw new SnapshotFormatError(`corrupt snapshot: header frame at byte ${at} fails its checksum (CRC32)`);
    let decoded: unknown;
    try {
      decoded = decode(payload);
    } catch (e) {
      throw new SnapshotFormatError(`bad snapshot header at byte ${at}: not valid CBOR (${e instanceof Error ? e.message : String(e)})`);
    }
    const header = validateHeader(decoded);
    if (header.formatVersion !== version) {
      throw new SnapshotFormatError(
        `corrupt snapshot: the header says format version ${header.formatVersion} but the preamble says ${version}`,
      );
    }
    return header;
  }

  /** Records, one decoded block at a time. Throws SnapshotFormatError at the first fault, however late. */
  async *batches(): AsyncGenerator<SnapshotRecord[]> {
    assert(!this.started, "a snapshot's records can be read once");
    this.started = true;
    const src = this.src;
    try {
      const header = await this.readHeader();
      const seen = new Map<string, number>();
      for (const t of Object.keys(header.counts)) seen.set(t, 0);
      let records = 0;
      let blocks = 0;
      let rawBytes = 0;
      // Blocks whose decompression is under way on the thread pool, oldest first.
      const pending: { at: number; raw: Promise<Uint8Array> }[] = [];
      let end: { at: number; fh: FrameHeader } | undefined;
      const decodeBlock = (raw: Uint8Array, at: number): SnapshotRecord[] => {
        let items: unknown[];
        try {
          items = decodeMultiple(raw);
        } catch (e) {
          throw new SnapshotFormatError(
            `bad record in block at byte ${at} (after record ${records}): not valid CBOR (${e instanceof Error ? e.message : String(e)})`,
          );
        } finally {
          // The decompressed block is ours alone and decodeMultiple copies what it keeps.
          release(raw);
        }
        const batch: SnapshotRecord[] = [];
        // Records of one table come in runs (the writer walks table by table): counted per run, not per record.
        let runTable: string | undefined;
        let runLength = 0;
        for (const item of items) {
          if (
            typeof item !== "object" ||
            item === null ||
            Array.isArray(item) ||
            typeof (item as { t?: unknown }).t !== "string" ||
            !("v" in item)
          ) {
            throw new SnapshotFormatError(`bad record ${records} in block at byte ${at}: not a map {t: string, v}`);
          }
          const rec = item as SnapshotRecord;
          if (rec.t !== runTable) {
            if (runTable !== undefined) seen.set(runTable, seen.get(runTable)! + runLength);
            if (!seen.has(rec.t))
              throw new SnapshotFormatError(
                `bad record ${records} in block at byte ${at}: table "${rec.t}" is not listed in the header's counts`,
              );
            runTable = rec.t;
            runLength = 0;
          }
          runLength++;
          records++;
          batch.push(rec);
        }
        if (runTable !== undefined) seen.set(runTable, seen.get(runTable)! + runLength);
        return batch;
      };
      try {
        for (;;) {
          const at = src.offset;
          const fh = parseFrameHeader(await src.read(FRAME_HEADER_BYTES, "a frame header"), at);
          if (fh.kind !== FrameKind.Block) {
            // Decode what is still in flight, in order, before the end frame's checks.
            while (pending.length > 0) {
              const head = pending.shift()!;
              yield decodeBlock(await head.raw, head.at);
            }
            if (fh.kind !== FrameKind.End)
              throw new SnapshotFormatError(`corrupt snapshot: unexpected ${frameKindName(fh.kind)} frame at byte ${at}`);
            end = { at, fh };
            break;
          }
          if (fh.raw === 0 || fh.raw > MAX_BLOCK_RAW_BYTES || fh.stored > MAX_BLOCK_STORED_BYTES) {
            throw new SnapshotFormatError(
              `bad snapshot: block at byte ${at} declares ${fh.stored} stored / ${fh.raw} raw bytes (limits ${MAX_BLOCK_STORED_BYTES} / ${MAX_BLOCK_RAW_BYTES})`,
            );
          }
          const stored = await src.read(fh.stored, "a block");
          if (crc32(stored) !== fh.payloadCrc)
            throw new SnapshotFormatError(`corrupt snapshot: block at byte ${at} fails its checksum (CRC32)`);
          blocks++;
          rawBytes += fh.raw;
          if (this.depth === 0) {
            const raw = decompressSync(stored, fh.raw, at);
            // A block that spanned chunks was copied into a buffer of its own: hand it back now (lib/release.ts).
            if (src.copied) release(stored);
            yield decodeBlock(raw, at);
            continue;
          }
          const raw = decompressAsync(stored, fh.raw, at);
          raw.catch(() => undefined); // awaited in order below; this only keeps an abandoned one from being "unhandled"
          pending.push({ at, raw });
          while (pending.length > this.depth) {
            const head = pending.shift()!;
            yield decodeBlock(await head.raw, head.at);
          }
        }
      } finally {
        pending.length = 0;
      }
      {
        assert(end !== undefined, "the frame loop ends only at the end frame");
        const { at, fh } = end;
        if (fh.stored > MAX_END_BYTES || fh.raw !== fh.stored)
          throw new SnapshotFormatError(`bad snapshot: end frame at byte ${at} is ${fh.stored} bytes`);
        const payload = await src.read(fh.stored, "the end frame's payload");
        if (crc32(payload) !== fh.payloadCrc)
          throw new SnapshotFormatError(`corrupt snapshot: end frame at byte ${at} fails its checksum (CRC32)`);
        let summary;
        try {
          summary = validateEnd(decode(payload));
        } catch (e) {
          if (e instanceof SnapshotFormatError) throw e;
          throw new SnapshotFormatError(`bad snapshot end frame at byte ${at}: not valid CBOR`);
        }

        // The trailer is the hash of everything before it.
        src.hashing = false;
        const beforeTrailer = src.hasher.copy();
        const trailerAt = src.offset;
        // A copy: the check for trailing bytes below may release the chunk it came from.
        const trailer = (await src.read(TRAILER_BYTES, "the SHA-256 trailer")).slice();
        const expected = this.verifiedSha256 === undefined ? new Uint8Array(beforeTrailer.digest()) : trailer;
        if (!equalBytes(expected, trailer)) {
          throw new SnapshotFormatError(
            `checksum mismatch: the SHA-256 of bytes 0-${trailerAt - 1} is ${hex(expected)} but the trailer says ${hex(trailer)}`,
          );
        }
        if (await src.fill(1)) {
          const extra = await src.drain();
          throw new SnapshotFormatError(`${extra} unexpected trailing bytes after the end of the snapshot at byte ${src.offset}`);
        }
        if (summary.records !== records || summary.blocks !== blocks || summary.rawBytes !== rawBytes) {
          throw new SnapshotFormatError(
            `bad snapshot: the end frame declares ${summary.records} records in ${summary.blocks} blocks (${summary.rawBytes} bytes) but the file holds ${records} in ${blocks} (${rawBytes} bytes)`,
          );
        }
        const counts: Record<string, number> = {};
        for (const [t, n] of seen) {
          if (n !== header.counts[t])
            throw new SnapshotFormatError(`bad snapshot: table "${t}" holds ${n} records but the header declares ${header.counts[t]}`);
          counts[t] = n;
        }
        src.hasher.update(trailer);
        const sha256 = this.verifiedSha256 ?? src.hasher.digest("hex");
        this.result = {
          header,
          size: src.offset,
          sha256,
          digest: `sha-256=${Buffer.from(sha256, "hex").toString("base64")}`,
          counts,
          records,
        };
        return;
      }
    } finally {
      await src.close();
    }
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export interface SnapshotReader {
  /** Resolves once the preamble and header frame have been read and checked (the rest is not yet verified). */
  readonly header: Promise<SnapshotHeader>;
  /** Records in file order; read either this or `batches`, once. Throws SnapshotFormatError on any fault, the whole-file checks at the end. */
  readonly records: AsyncIterable<SnapshotRecord>;
  /** The same records, one block's worth (about 256 KiB raw) per item: cheaper per record. */
  readonly batches: AsyncIterable<SnapshotRecord[]>;
  /** Set after the records have been read to the end without error. */
  readonly result: VerifyResult | undefined;
  /** Stop early (e.g. after looking at the header) and release the source. Reading the records to the end, or breaking out of them, does this too. */
  cancel(): Promise<void>;
}

/**
 * Stream a snapshot's records, verifying as it goes. The checksum, trailing-byte and count checks throw
 * only after the last record, so callers who must not act on unverified data either call verifySnapshot
 * first, or build something disposable from the records (a new state store) and adopt it only once the
 * iteration has ended without throwing: one pass instead of two.
 */
export function readSnapshot(chunks: AsyncIterable<Uint8Array>, options?: ReadOptions): SnapshotReader {
  const parser = new SnapshotParser(chunks, options);
  const batches: AsyncIterable<SnapshotRecord[]> = { [Symbol.asyncIterator]: () => parser.batches() };
  const records = {
    async *[Symbol.asyncIterator]() {
      for await (const batch of batches) yield* batch;
    },
    // The state store's restore takes the records a block at a time through this key
    // (state/restore.ts RECORD_BATCHES): one await per block instead of one per record.
    [RECORD_BATCHES]: () => batches,
  };
  return {
    get header() {
      return parser.readHeader();
    },
    batches,
    records,
    get result() {
      return parser.result;
    },
    cancel: () => parser.cancel(),
  };
}

/** Read only the preamble and header (checked, but the body is not verified), then release the source. */
export async function readSnapshotHeader(chunks: AsyncIterable<Uint8Array>): Promise<SnapshotHeader> {
  const parser = new SnapshotParser(chunks);
  try {
    return await parser.readHeader();
  } finally {
    await parser.cancel();
  }
}

/** A full verifying pass: checksum, version, structure, counts. Throws SnapshotFormatError saying what is wrong. */
export async function verifySnapshot(chunks: AsyncIterable<Uint8Array>, options?: ReadOptions): Promise<VerifyResult> {
  const parser = new SnapshotParser(chunks, options);
  for await (const _ of parser.batches()) {
    // Decoding each block is the structure check; the records themselves are not kept.
  }
  assert(parser.result !== undefined, "a completed pass sets its result");
  return parser.result;
}

export const DEFAULT_CHUNK_BYTES = 256 << 10;

/** A file's bytes as fresh chunks (each its own buffer, so a consumer may keep views into them). */
export async function* fileChunks(path: string, chunkBytes = DEFAULT_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  assert(Number.isSafeInteger(chunkBytes) && chunkBytes > 0 && chunkBytes <= 64 << 20, "chunkBytes in 1 B..64 MiB");
  const fh = await open(path, "r");
  try {
    for (;;) {
      const buf = new Uint8Array(chunkBytes);
      const { bytesRead } = await fh.read(buf, 0, chunkBytes, null);
      if (bytesRead === 0) return;
      yield bytesRead === chunkBytes ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export async function verifySnapshotFile(path: string, options: ReadOptions = {}): Promise<VerifyResult> {
  return verifySnapshot(fileChunks(path), { release: (options.pipeline ?? DEFAULT_READ_PIPELINE) === 0, ...options });
}
