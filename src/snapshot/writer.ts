// Produce a snapshot file from a header and a stream of records: as a pull-based byte stream (for HTTP
// bodies and RPC) or straight to disk (tmp + fsync + rename, mode 0600). Memory is bounded by one block
// whatever the number of records; records are pulled only as fast as the consumer takes bytes.

import { concatBytes } from "../lib/bytes.ts";
import { randomBytes } from "node:crypto";
import { link, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import { encode } from "../lib/codec.ts";
import { release } from "../lib/release.ts";
import {
  BLOCK_TARGET_BYTES,
  type EndSummary,
  formatVersionOf,
  FrameKind,
  MAX_RECORD_BYTES,
  type SnapshotHeader,
  type SnapshotRecord,
  SnapshotFormatError,
  ZSTD_LEVEL,
  encodeFrameHeader,
  encodePreamble,
  validateHeader,
} from "./format.ts";
import { NO_ROOM, RecordEncoder } from "./record_encoder.ts";

export type SnapshotRecords = Iterable<SnapshotRecord> | AsyncIterable<SnapshotRecord>;
export type WriterHeader = Omit<SnapshotHeader, "formatVersion">;

/** Filled in by encodeSnapshot once the last byte has been produced. */
export interface WriteResult {
  /** Bytes in the whole file. */
  size: number;
  /** Hex SHA-256 of the whole file (what an HTTP `Digest` header carries, base64-encoded). */
  sha256: string;
  /** The same hash as an RFC 3230 `Digest` header value: "sha-256=<base64>". */
  digest: string;
  records: number;
}

/** "sha-256=<base64>" from a hex SHA-256, for the HTTP `Digest` header. */
export function digestHeader(sha256Hex: string): string {
  assert(/^[0-9a-f]{64}$/.test(sha256Hex), "a hex SHA-256");
  return `sha-256=${Buffer.from(sha256Hex, "hex").toString("base64")}`;
}

/** A caller bug: records that do not match the header, or a record too large. The stream fails with it. */
export class SnapshotWriteError extends EdgeError {
  constructor(message: string) {
    super("INTERNAL", `snapshot writer: ${message}`);
    this.name = "SnapshotWriteError";
  }
}

/** Bun's one-shot zstd (ZSTD_compress): the same frame inline or on the thread pool, so depth never changes the bytes. */
function compressSync(raw: Uint8Array): Uint8Array {
  return Bun.zstdCompressSync(raw, { level: ZSTD_LEVEL });
}

function compressAsync(raw: Uint8Array): Promise<Uint8Array> {
  return Bun.zstdCompress(raw, { level: ZSTD_LEVEL });
}

export interface EncodeOptions {
  /**
   * Blocks compressed on the thread pool while the next is encoded: 0 compresses inline. Each adds one
   * block (256 KiB) of memory. Overlap helps only when a second core is free.
   */
  pipeline?: number;
}

/**
 * Inline by default: raft snapshots run beside request handling and should not take the second core
 * from it. A save an operator waits for asks for SAVE_PIPELINE (snapshot_save.ts).
 */
export const DEFAULT_PIPELINE = 0;
/**
 * Blocks in flight for a save someone waits on: a few blocks compressing ahead keep the second core
 * busy; more buy nothing (test/bench/RESULTS.md, snapshot).
 */
export const SAVE_PIPELINE = 3;

/**
 * The file as a sequence of byte chunks (one per block, roughly). `result` is filled in after the last
 * chunk. If `records` throws or disagrees with `header.counts`, the generator throws before the END frame
 * and trailer, so what was produced so far can never verify.
 */
export async function* encodeSnapshot(
  header: WriterHeader,
  records: SnapshotRecords,
  result?: WriteResult,
  options: EncodeOptions = {},
): AsyncGenerator<Uint8Array> {
  const depth = options.pipeline ?? DEFAULT_PIPELINE;
  assert(Number.isSafeInteger(depth) && depth >= 0 && depth <= 8, "pipeline depth in 0..8");
  let full: SnapshotHeader;
  try {
    full = validateHeader({ ...header, formatVersion: formatVersionOf(header) });
  } catch (e) {
    throw new SnapshotWriteError(e instanceof SnapshotFormatError ? e.message : String(e));
  }
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  const emit = (bytes: Uint8Array): Uint8Array => {
    hasher.update(bytes);
    size += bytes.length;
    return bytes;
  };

  const headerBytes = encode(full);
  yield emit(
    concatBytes([encodePreamble(full.formatVersion), encodeFrameHeader(FrameKind.Header, headerBytes, headerBytes.length), headerBytes]),
  );

  const remaining = new Map(Object.entries(full.counts));
  // Block buffers: the one being filled, plus those whose compression is done and may be reused. A
  // pipelined block's buffer is read by the compressor until its promise settles.
  const spare: Uint8Array[] = [];
  let block: Uint8Array = new Uint8Array(BLOCK_TARGET_BYTES);
  let fill = 0;
  let blocks = 0;
  let rawBytes = 0;
  let total = 0;
  const encoder = new RecordEncoder();
  // Chunks due for output, in file order; and blocks still being compressed on the thread pool, oldest first.
  const ready: Uint8Array[] = [];
  const inflight: { raw: Uint8Array; owned: boolean; stored: Promise<Uint8Array> }[] = [];

  const frame = (raw: number, stored: Uint8Array): void => {
    blocks++;
    rawBytes += raw;
    ready.push(emit(encodeFrameHeader(FrameKind.Block, stored, raw)), emit(stored));
  };

  /**
   * Hand a finished block over. `owned`: `raw` is a view of a block buffer, returned to `spare` once
   * compressed; otherwise (a record too big for a block) it is the caller's to drop.
   */
  const submit = (raw: Uint8Array, owned: boolean): void => {
    if (depth === 0) return frame(raw.length, compressSync(raw));
    const stored = compressAsync(raw);
    stored.catch(() => undefined); // awaited in order by due(); this only keeps an abandoned one from being "unhandled"
    inflight.push({ raw, owned, stored });
  };

  /** Submit the block being filled and start another (a spare one when pipelining, else the same). */
  const cut = (): void => {
    submit(block.subarray(0, fill), true);
    if (depth > 0) block = spare.pop() ?? new Uint8Array(BLOCK_TARGET_BYTES);
    fill = 0;
  };

  /** Yield what is ready, waiting for compressions until at most `limit` remain in flight. */
  async function* due(limit: number): AsyncGenerator<Uint8Array> {
    while (inflight.length > limit) {
      const head = inflight.shift()!;
      frame(head.raw.length, await head.stored);
      if (head.owned) spare.push(new Uint8Array(head.raw.buffer, head.raw.byteOffset, BLOCK_TARGET_BYTES));
    }
    while (ready.length > 0) yield ready.shift()!;
  }

  const add = (rec: SnapshotRecord): void => {
    if (typeof rec !== "object" || rec === null || typeof rec.t !== "string") {
      throw new SnapshotWriteError(`record ${total} is not {t: string, v}`);
    }
    const left = remaining.get(rec.t);
    if (left === undefined) throw new SnapshotWriteError(`record ${total} is for table "${rec.t}", which the header's counts do not list`);
    if (left === 0) throw new SnapshotWriteError(`table "${rec.t}" produced more records than the header declares (${full.counts[rec.t]})`);
    remaining.set(rec.t, left - 1);
    total++;
    // Straight into the block; a record that does not fit starts the next one.
    let end = encoder.encodeInto(rec.t, rec.v, block, fill, BLOCK_TARGET_BYTES);
    if (end === NO_ROOM && fill > 0) {
      cut();
      end = encoder.encodeInto(rec.t, rec.v, block, 0, BLOCK_TARGET_BYTES);
    }
    if (end >= 0) {
      fill = end;
      return;
    }
    // A value the fast encoder leaves to cbor-x, or a record larger than a block.
    // encode() may return a view of the encoder's reusable buffer: copy it into the block before the next call.
    const bytes = encode({ t: rec.t, v: rec.v });
    if (bytes.length > MAX_RECORD_BYTES)
      throw new SnapshotWriteError(
        `record ${total - 1} of table "${rec.t}" is ${bytes.length} bytes, over the ${MAX_RECORD_BYTES}-byte limit`,
      );
    if (fill + bytes.length > BLOCK_TARGET_BYTES && fill > 0) cut();
    if (bytes.length > BLOCK_TARGET_BYTES) {
      submit(bytes.slice(), false);
    } else {
      block.set(bytes, fill);
      fill += bytes.length;
    }
  };

  // One record at a time, pausing at each finished block: a consumer that stops reading stops the producer.
  if (Symbol.asyncIterator in records) {
    for await (const rec of records) {
      add(rec);
      if (ready.length > 0 || inflight.length > depth) yield* due(depth);
    }
  } else {
    for (const rec of records) {
      add(rec);
      if (ready.length > 0 || inflight.length > depth) yield* due(depth);
    }
  }
  if (fill > 0) cut();
  yield* due(0);

  for (const [t, left] of remaining) {
    if (left !== 0)
      throw new SnapshotWriteError(`table "${t}" produced ${full.counts[t]! - left} records but the header declares ${full.counts[t]}`);
  }
  const end: EndSummary = { records: total, blocks, rawBytes };
  const endBytes = encode(end);
  const endFrame = concatBytes([encodeFrameHeader(FrameKind.End, endBytes, endBytes.length), endBytes]);
  emit(endFrame);
  // The trailer is the hash of everything before it; the whole file's hash (for a Digest header) goes on to
  // cover the trailer too, so take the trailer from a copy of the running state.
  const trailer = new Uint8Array(hasher.copy().digest());
  assert(trailer.length === 32, "sha-256 digest is 32 bytes");
  const last = concatBytes([endFrame, trailer]);
  hasher.update(trailer);
  size += trailer.length;
  if (result) {
    result.size = size;
    result.sha256 = hasher.digest("hex");
    result.digest = digestHeader(result.sha256);
    result.records = total;
  }
  yield last;
}

/** The file as a pull-based ReadableStream: a record is pulled from `records` only when the consumer reads. */
export function snapshotStream(
  header: WriterHeader,
  records: SnapshotRecords,
  result?: WriteResult,
  options?: EncodeOptions,
): ReadableStream<Uint8Array> {
  const it = encodeSnapshot(header, records, result, options);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const n = await it.next();
        if (n.done) controller.close();
        else controller.enqueue(n.value);
      },
      async cancel() {
        await it.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

export interface WriteFileOptions extends EncodeOptions {
  /** false: refuse (EEXIST) if `path` exists when the file is complete, never replacing it. Default true. */
  overwrite?: boolean;
  /**
   * fdatasync after every this many bytes (0: only at the end). Bounds the dirty data a large snapshot
   * leaves for one final flush, which would otherwise compete for seconds with the raft log's fsyncs.
   */
  syncEveryBytes?: number;
}

export const DEFAULT_SYNC_EVERY_BYTES = 64 << 20;

/**
 * Write the file atomically: a temporary file beside `path` (mode 0600), fsync, rename over `path` (or
 * hard-link it there when not overwriting), fsync the directory. On any failure the temporary file is
 * removed and `path` is untouched.
 */
export async function writeSnapshotFile(
  path: string,
  header: WriterHeader,
  records: SnapshotRecords,
  options: WriteFileOptions = {},
): Promise<WriteResult> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString("hex")}`);
  const result: WriteResult = { size: 0, sha256: "", digest: "", records: 0 };
  const fh = await open(tmp, "wx", 0o600);
  try {
    // The mode passed to open is filtered by the umask; the file holds secrets, so set it outright.
    await fh.chmod(0o600);
    const syncEvery = options.syncEveryBytes ?? DEFAULT_SYNC_EVERY_BYTES;
    assert(Number.isSafeInteger(syncEvery) && syncEvery >= 0, "syncEveryBytes is a non-negative integer");
    let unsynced = 0;
    // At most one intermediate flush in flight, overlapping with encoding and writing what follows.
    let flushing: Promise<void> | undefined;
    for await (const chunk of encodeSnapshot(header, records, result, options)) {
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
        assert(bytesWritten > 0, "file write made progress");
        off += bytesWritten;
      }
      unsynced += chunk.length;
      // encodeSnapshot's chunks are ours alone (hashed as produced): give the memory back for the next.
      release(chunk);
      if (syncEvery > 0 && unsynced >= syncEvery) {
        await flushing;
        flushing = fh.datasync();
        flushing.catch(() => undefined); // awaited before the next flush or at the end
        unsynced = 0;
      }
    }
    await flushing;
    await fh.sync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  try {
    if (options.overwrite === false) {
      // link() fails with EEXIST rather than replacing: the no-clobber twin of rename().
      await link(tmp, path);
      await unlink(tmp);
    } else {
      await rename(tmp, path);
    }
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  assert(result.sha256.length === 64, "writer filled in its result");
  return result;
}
