// The contract between the pure raft core and the log it reads: types of log
// entries, hard state and snapshot metadata, the read interface the core
// consults, and the write interface the driver (server/) and the simulation use
// to persist a Ready batch. storage/ implements both on disk; the simulation in
// memory. Nothing here does I/O.
import { EdgeError } from "../lib/errors.ts";

export type NodeId = string;

export const EntryType = {
  /** An application command, opaque to the core. Also the leader's empty no-op on election (data.length === 0). */
  Normal: 0,
  /** A membership change; data is the encoded ConfChange. Takes effect when applied. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/**
 * A log entry. Immutable once proposed: the core, the log's cache and the transport share entry
 * objects and their data buffers without copying.
 */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  /** Who this server voted for in `term`; "" when none. */
  vote: NodeId;
  commit: number;
}

export interface ServerInfo {
  id: NodeId;
  /** RPC address (host:port) the cluster reaches this server at; carried in the replicated configuration. */
  address: string;
  voter: boolean;
}

export interface Configuration {
  servers: ServerInfo[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  /** The membership as of `index`. */
  config: Configuration;
}

/** Thrown by term()/entries() for an index below firstIndex()-1: it has been compacted into a snapshot. */
export class CompactedError extends EdgeError {
  constructor(index: number, first: number) {
    super("COMPACTED", `index ${index} is compacted (first available ${first})`);
    this.name = "CompactedError";
  }
}

/** Thrown by term()/entries() for an index above lastIndex(). */
export class UnavailableError extends EdgeError {
  constructor(index: number, last: number) {
    super("UNAVAILABLE", `index ${index} is not yet available (last ${last})`);
    this.name = "UnavailableError";
  }
}

/**
 * Read side, consulted synchronously by the core.
 * - firstIndex() is (last compacted index) + 1; 1 for a log never compacted. Compaction never passes
 *   the newest snapshot, so snapshotMeta().index >= firstIndex() - 1.
 * - term(i) is valid for firstIndex()-1 ..= lastIndex(); term(snapshot index) is the snapshot's term;
 *   term(0) is 0.
 * - entries(lo, hi, maxBytes) returns [lo, hi), at least one entry when lo < hi even if it alone
 *   exceeds maxBytes; throws CompactedError / UnavailableError outside the range.
 * - initialState().config is the configuration as of snapshotMeta().index (the snapshot's, or the
 *   bootstrap configuration recorded as a snapshot at index 0); the core replays ConfChange entries
 *   after it as they are applied.
 * An I/O error thrown from here is fatal: the core must not continue on a log it cannot read.
 */
export interface LogReader {
  initialState(): { hardState: HardState; config: Configuration };
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number;
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  snapshotMeta(): SnapshotMeta;
}

/**
 * Write side, used by the driver to persist a Ready batch before advance().
 * - append(entries): entries are contiguous; the first may be <= lastIndex()+1, in which case the
 *   existing suffix from entries[0].index on is replaced (never at or below the commit index). Durable
 *   when the returned promise resolves (one fdatasync for the whole batch).
 * - setHardState: durable on resolve.
 * - setSnapshot(meta): record (durably) that a snapshot at meta.index exists in the snapshot store; it
 *   becomes snapshotMeta(). Log entries are untouched.
 * - compact(index): drop entries <= index; requires index <= snapshotMeta().index. term(index) stays
 *   readable (it is firstIndex()-1). Crash-safe.
 * - installSnapshot(meta): the log is replaced by the snapshot point: firstIndex = meta.index + 1,
 *   lastIndex = meta.index, term(meta.index) = meta.term. Entries after meta.index with matching term
 *   may be kept (Raft Fig. 13 rule 6) or dropped; implementations here drop them.
 */
export interface LogWriter {
  append(entries: Entry[]): Promise<void>;
  setHardState(hs: HardState): Promise<void>;
  setSnapshot(meta: SnapshotMeta): Promise<void>;
  compact(index: number): Promise<void>;
  installSnapshot(meta: SnapshotMeta): Promise<void>;
}

export type LogStorage = LogReader & LogWriter;

export function entrySize(e: Entry): number {
  // Rough wire size: payload plus framing; used for byte limits, never for encoding.
  return e.data.byteLength + 24;
}
