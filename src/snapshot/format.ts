// The snapshot file's layout, limits, header type and error class: the one place that says what bytes a
// snapshot file holds. writer.ts produces this layout, reader.ts checks it.
//
// Layout (all integers big-endian):
//   preamble  16 B  magic "\x89ESNAP\r\n" | format version u32 | CRC32 of the previous 12 bytes
//   frame*          kind u8 | 3 zero bytes | stored length u32 | raw length u32 | CRC32 of payload
//                   | CRC32 of the previous 16 header bytes (20 B), then the payload
//                   frames in order: one HEADER (CBOR SnapshotHeader), any number of BLOCK (zstd of a
//                   run of concatenated CBOR records {t, v}), one END (CBOR EndSummary)
//   trailer   32 B  SHA-256 of every byte before it
// The version sits in a preamble with its own CRC so that a flipped bit there reads as "corrupt", never
// as "newer version"; every frame header has its own CRC so a flipped length is caught before it is
// trusted; blocks are compressed independently so memory is bounded by one block, whatever the file's size.

import { EdgeError } from "../lib/errors.ts";
import { assert } from "../lib/assert.ts";

/**
 * The newest format this binary reads. Format 2 adds the header's `clusterVersion`; a file without one is
 * written as format 1, so that a cluster a 0.1.0 server is still part of gets files it reads (see
 * formatVersionOf), and a 0.1.0 server given a newer file refuses it at the preamble, naming both formats.
 */
export const FORMAT_VERSION = 2;

/** "\x89ESNAP\r\n": the high byte and CR LF catch 7-bit and newline-translating transfers, as PNG's does. */
export const MAGIC = new Uint8Array([0x89, 0x45, 0x53, 0x4e, 0x41, 0x50, 0x0d, 0x0a]);
export const PREAMBLE_BYTES = 16;
export const FRAME_HEADER_BYTES = 20;
export const TRAILER_BYTES = 32;

export const FrameKind = { Header: 1, Block: 2, End: 3 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const ZSTD_LEVEL = 1;

// Limits. A block is cut once it reaches BLOCK_TARGET_BYTES of records; a record larger than that gets a
// block of its own, so a block's raw size never exceeds max(BLOCK_TARGET_BYTES, MAX_RECORD_BYTES).
export const BLOCK_TARGET_BYTES = 256 << 10;
export const MAX_RECORD_BYTES = 16 << 20;
export const MAX_BLOCK_RAW_BYTES = Math.max(BLOCK_TARGET_BYTES, MAX_RECORD_BYTES);
/** zstd's worst case expands incompressible input by well under 1%; the slack covers it. */
export const MAX_BLOCK_STORED_BYTES = MAX_BLOCK_RAW_BYTES + (MAX_BLOCK_RAW_BYTES >> 6) + 4096;
export const MAX_HEADER_BYTES = 1 << 20;
export const MAX_END_BYTES = 1 << 20;
export const MAX_TABLES = 1024;
export const MAX_TABLE_NAME = 128;
export const MAX_TEXT_FIELD = 256;

/** One row of state, produced by the state machine's persist and consumed by its restore. */
export interface SnapshotRecord {
  t: string;
  v: unknown;
}

export interface SnapshotHeader {
  formatVersion: number;
  /** The edgenode version that wrote the file, e.g. "0.1.0". */
  producer: string;
  region: string;
  clusterId: string;
  snapshotId: string;
  /** Raft index and term of the state the file holds. */
  index: number;
  term: number;
  /** RFC 3339. */
  created: string;
  /** Records per table; the reader checks the body holds exactly these. */
  counts: Record<string, number>;
  /** The raft configuration at `index` (informational: a restore keeps the cluster's membership). */
  config?: unknown;
  /** The committed cluster version at `index` (format 2 on; src/server/cluster_version.ts). */
  clusterVersion?: string;
  /** Autopilot's configuration as an operator set it (src/server/autopilot_config.ts checks it); format 2 files only. */
  autopilot?: unknown;
}

/** The format a file with `header` is written in: the oldest that holds everything the header says. */
export function formatVersionOf(header: { clusterVersion?: string }): number {
  return header.clusterVersion === undefined ? 1 : 2;
}

/** What the END frame carries: totals the reader cross-checks against what it counted. */
export interface EndSummary {
  records: number;
  blocks: number;
  rawBytes: number;
}

/** A file that is not a valid snapshot. The message says what is wrong and, where it can, at which byte. */
export class SnapshotFormatError extends EdgeError {
  constructor(message: string) {
    super("BAD_SNAPSHOT", message);
    this.name = "SnapshotFormatError";
  }
}

export function frameKindName(kind: number): string {
  switch (kind) {
    case FrameKind.Header:
      return "header";
    case FrameKind.Block:
      return "block";
    case FrameKind.End:
      return "end";
    default:
      return `unknown(${kind})`;
  }
}

/** CRC32 of `bytes`; `seed`, the CRC32 of the bytes before them, continues one across pieces. */
export function crc32(bytes: Uint8Array, seed = 0): number {
  return Bun.hash.crc32(bytes, seed) >>> 0;
}

export function encodePreamble(version: number): Uint8Array {
  const out = new Uint8Array(PREAMBLE_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(8, version);
  view.setUint32(12, crc32(out.subarray(0, 12)));
  return out;
}

export function encodeFrameHeader(kind: FrameKind, stored: Uint8Array, rawLength: number): Uint8Array {
  assert(stored.length <= 0xffffffff && rawLength <= 0xffffffff, "frame lengths fit in u32");
  const out = new Uint8Array(FRAME_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint8(0, kind);
  view.setUint32(4, stored.length);
  view.setUint32(8, rawLength);
  view.setUint32(12, crc32(stored));
  view.setUint32(16, crc32(out.subarray(0, 16)));
  return out;
}

export interface FrameHeader {
  kind: number;
  stored: number;
  raw: number;
  payloadCrc: number;
}

/** Parse a frame header, checking its own CRC and reserved bytes; `at` is its offset, for messages. */
export function parseFrameHeader(bytes: Uint8Array, at: number): FrameHeader {
  assert(bytes.length === FRAME_HEADER_BYTES, "frame header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(16) !== crc32(bytes.subarray(0, 16))) {
    throw new SnapshotFormatError(`corrupt snapshot: frame header at byte ${at} fails its checksum (CRC32)`);
  }
  const kind = view.getUint8(0);
  if (bytes[1] !== 0 || bytes[2] !== 0 || bytes[3] !== 0) {
    throw new SnapshotFormatError(`corrupt snapshot: frame header at byte ${at} has non-zero reserved bytes`);
  }
  return { kind, stored: view.getUint32(4), raw: view.getUint32(8), payloadCrc: view.getUint32(12) };
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function checkText(h: Record<string, unknown>, field: string, allowEmpty: boolean): string {
  const v = h[field];
  if (typeof v !== "string") throw new SnapshotFormatError(`bad snapshot header: ${field} must be a string`);
  if (v.length > MAX_TEXT_FIELD) throw new SnapshotFormatError(`bad snapshot header: ${field} is longer than ${MAX_TEXT_FIELD} characters`);
  if (!allowEmpty && v.length === 0) throw new SnapshotFormatError(`bad snapshot header: ${field} is empty`);
  return v;
}

function checkCount(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new SnapshotFormatError(`bad snapshot header: ${what} must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}

export function checkTableName(t: string, what: string): void {
  if (t.length === 0 || t.length > MAX_TABLE_NAME) {
    throw new SnapshotFormatError(`${what}: table name must be 1 to ${MAX_TABLE_NAME} characters`);
  }
  // Counts are plain objects; this one name would set the prototype instead of a count.
  if (t === "__proto__") throw new SnapshotFormatError(`${what}: "__proto__" is not a valid table name`);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Validate a decoded header (from the file, or handed to the writer) and return it in canonical form.
 * Shared by both sides so the writer can never produce a header the reader refuses.
 */
export function validateHeader(x: unknown): SnapshotHeader {
  if (!isPlainObject(x)) throw new SnapshotFormatError("bad snapshot header: not a map");
  const formatVersion = checkCount(x.formatVersion, "formatVersion");
  const index = checkCount(x.index, "index");
  const term = checkCount(x.term, "term");
  const created = checkText(x, "created", false);
  if (!RFC3339.test(created) || Number.isNaN(Date.parse(created)))
    throw new SnapshotFormatError(`bad snapshot header: created "${created}" is not an RFC 3339 time`);
  if (!isPlainObject(x.counts)) throw new SnapshotFormatError("bad snapshot header: counts must be a map of table name to record count");
  const names = Object.keys(x.counts);
  if (names.length > MAX_TABLES) throw new SnapshotFormatError(`bad snapshot header: more than ${MAX_TABLES} tables`);
  const counts: Record<string, number> = {};
  for (const name of names) {
    checkTableName(name, "bad snapshot header");
    counts[name] = checkCount(x.counts[name], `count of table "${name}"`);
  }
  const header: SnapshotHeader = {
    formatVersion,
    producer: checkText(x, "producer", false),
    region: checkText(x, "region", false),
    clusterId: checkText(x, "clusterId", true),
    snapshotId: checkText(x, "snapshotId", false),
    index,
    term,
    created,
    counts,
  };
  if (x.config !== undefined) header.config = x.config;
  if (x.clusterVersion !== undefined) {
    if (formatVersion < 2)
      throw new SnapshotFormatError(`bad snapshot header: clusterVersion in a format ${formatVersion} file (format 2 on)`);
    header.clusterVersion = checkText(x, "clusterVersion", false);
  }
  if (x.autopilot !== undefined) {
    if (formatVersion < 2 || !isPlainObject(x.autopilot))
      throw new SnapshotFormatError("bad snapshot header: autopilot must be a map, in a format 2 file");
    header.autopilot = x.autopilot;
  }
  return header;
}

export function validateEnd(x: unknown): EndSummary {
  if (!isPlainObject(x)) throw new SnapshotFormatError("bad snapshot end frame: not a map");
  const get = (k: string): number => {
    const v = x[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
      throw new SnapshotFormatError(`bad snapshot end frame: ${k} must be a non-negative integer`);
    return v;
  };
  return { records: get("records"), blocks: get("blocks"), rawBytes: get("rawBytes") };
}
