// The segmented write-ahead log: implements the raft core's LogStorage on a Disk. Appends are one
// batch write + one fdatasync; a conflicting append is itself the record of the suffix truncation
// (replay applies batches in order, later ones replacing the suffix); compaction and snapshot
// install are committed by the metadata slot file before segment files are deleted.
//
// Preallocation: the tail segment is kept zero-filled a few MiB ahead of its end (as PostgreSQL
// zero-fills WAL segments), so an append overwrites blocks the file already has and its fdatasync
// flushes only those data blocks — no file-size change, no filesystem journal commit — which runs
// well above the rate of the same write appended at the file's end (test/bench/RESULTS.md, storage:
// the two "async fs.fdatasync" rows). The cost is writing every byte of the log twice, the zeros in
// large sequential chunks. The zeros are only a speed hint: an all-zero remainder after the last
// batch is a clean end, and nothing acknowledged ever depends on them.
import { join } from "node:path";
import { assert, assertIndex } from "../lib/assert.ts";
import {
  CompactedError,
  type Configuration,
  type Entry,
  type HardState,
  type LogStorage,
  type SnapshotMeta,
  UnavailableError,
  entrySize,
} from "../raft/storage.ts";
import type { Disk, DiskFile } from "./disk.ts";
import { CorruptError, DiskError } from "./disk_error.ts";
import { EntryCache } from "./entry_cache.ts";
import { OffsetIndex } from "./offset_index.ts";
import { ReadWindow } from "./read_window.ts";
import { realDisk } from "./real_disk.ts";
import {
  BATCH_HEADER,
  type BatchHeader,
  COMMIT_FRAME,
  ENTRY_HEADER,
  MAX_BATCH_BYTES,
  MAX_BATCH_ENTRIES,
  MAX_ENTRY_BYTES,
  MAX_SEGMENT_BYTES,
  SEGMENT_HEADER,
  SEGMENT_VERSION,
  batchBytes,
  batchFrames,
  batchIntact,
  decodeEntryFrame,
  encodeBatch,
  encodeSegmentHeader,
  entryFrameBytes,
  parseSegmentHeader,
  parseSegmentName,
  readBatchHeader,
  segmentName,
} from "./segment_format.ts";
import { SlotFile } from "./slot_file.ts";
import { StableStore } from "./stable_store.ts";

export const META_FILE = "wal.meta";
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
/**
 * A follower in the replicate state trails by a few appends; one further behind reads the page
 * cache through entries(). The collector marks every cached entry, so a cache of many small entries
 * slows every append (test/bench/RESULTS.md, storage; entry_cache.ts).
 */
export const DEFAULT_CACHE_ENTRIES = 8192;
/** Zeros are written ahead of the tail's end in chunks of this size, up to PREFILL_AHEAD ahead. */
const PREFILL_CHUNK = 1024 * 1024;
const PREFILL_AHEAD = 4 * 1024 * 1024;
const ZEROS = new Uint8Array(PREFILL_CHUNK);
/** Batches up to this size are encoded into one reused buffer per log (see doAppend). */
const SCRATCH_BYTES = 256 * 1024;
/** Disk reads for old entries are grouped into spans of at most this many bytes. */
const READ_SPAN_BYTES = 1024 * 1024;
/** Opening reads segments through one buffer of this size (grown for a larger batch), freed after. */
const SCAN_WINDOW_BYTES = 4 * 1024 * 1024;

export interface WalOptions {
  segmentBytes?: number;
  cacheBytes?: number;
  /** Most entries the cache holds (DEFAULT_CACHE_ENTRIES). */
  cacheEntries?: number;
  log?: (level: string, msg: string) => void;
  /** The stable store holding the hard state; opened in the same directory when not given. */
  stable?: StableStore;
  disk?: Disk;
  /** Keep the tail segment zero-filled ahead of its end (default true); see the file comment. */
  preallocate?: boolean;
}

/** The log's own durable metadata (slot file wal.meta). */
interface LogMeta {
  v: 1;
  /** Entries <= compactIndex are gone; term(compactIndex) = compactTerm. */
  compactIndex: number;
  compactTerm: number;
  snapshot: SnapshotMeta;
  /** Segments with a lower id predate an installed snapshot and are ignored (then deleted). */
  minSegmentId: number;
}

const EMPTY_CONFIG: Configuration = { servers: [] };
const INITIAL_META: LogMeta = {
  v: 1,
  compactIndex: 0,
  compactTerm: 0,
  snapshot: { index: 0, term: 0, config: EMPTY_CONFIG },
  minSegmentId: 1,
};

function checkMeta(v: unknown, path: string): LogMeta {
  const o = v as Partial<LogMeta> | undefined;
  const ok =
    o &&
    o.v === 1 &&
    Number.isSafeInteger(o.compactIndex) &&
    Number.isSafeInteger(o.compactTerm) &&
    Number.isSafeInteger(o.minSegmentId) &&
    o.snapshot &&
    Number.isSafeInteger(o.snapshot.index) &&
    Number.isSafeInteger(o.snapshot.term) &&
    Array.isArray(o.snapshot.config?.servers);
  if (!ok) throw new CorruptError(`${path}: log metadata is malformed`);
  return o as LogMeta;
}

interface Segment {
  id: number;
  baseIndex: number;
  path: string;
  file: DiskFile;
  /** End of the valid data: the next batch is written here. */
  size: number;
  /** Highest index of any entry ever written to this segment (live or superseded); 0 when none. */
  maxWritten: number;
  /** Bytes from size up to here are zeros already written (not necessarily synced): a speed hint only. */
  zeroedTo: number;
}

export class Wal implements LogStorage {
  private readonly segments: Segment[] = [];
  private readonly byId = new Map<number, Segment>();
  private index: OffsetIndex;
  private readonly cache: EntryCache;
  private chain: Promise<void> = Promise.resolve();
  private failed: Error | undefined;
  private closed = false;
  /** The background fdatasync of the latest prefill; awaited before any segment file is closed. */
  private prefilling: Promise<void> | undefined;
  /** Set only while open() scans the segments. */
  private scanWindow: ReadWindow | undefined;

  private constructor(
    private readonly dir: string,
    private readonly disk: Disk,
    private readonly stable: StableStore,
    private readonly ownsStable: boolean,
    private readonly metaFile: SlotFile,
    private meta: LogMeta,
    private readonly segmentBytes: number,
    cacheBytes: number,
    cacheEntries: number,
    private readonly log: (level: string, msg: string) => void,
    private preallocate: boolean,
  ) {
    this.index = new OffsetIndex(meta.compactIndex + 1);
    this.cache = new EntryCache(cacheBytes, cacheEntries);
  }

  static async open(dir: string, opts: WalOptions = {}): Promise<Wal> {
    const disk = opts.disk ?? realDisk;
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    assert(
      Number.isSafeInteger(segmentBytes) && segmentBytes >= 4096 && segmentBytes <= MAX_SEGMENT_BYTES,
      () => `segmentBytes must be 4 KiB ..= 1 GiB, got ${segmentBytes}`,
    );
    assert(Number.isSafeInteger(cacheBytes) && cacheBytes >= 0, "cacheBytes must be >= 0");
    disk.mkdirp(dir);
    const stable = opts.stable ?? (await StableStore.open(dir, { disk }));
    const metaPath = join(dir, META_FILE);
    const metaFile = await SlotFile.open(disk, metaPath, INITIAL_META);
    const meta = checkMeta(metaFile.value, metaPath);
    const log = opts.log ?? ((level, msg) => console.error(`[${level}] storage: ${msg}`));
    const cacheEntries = opts.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    assert(Number.isSafeInteger(cacheEntries) && cacheEntries >= 1, "cacheEntries must be >= 1");
    const wal = new Wal(
      dir,
      disk,
      stable,
      !opts.stable,
      metaFile,
      meta,
      segmentBytes,
      cacheBytes,
      cacheEntries,
      log,
      opts.preallocate ?? true,
    );
    try {
      await wal.recover();
    } catch (e) {
      wal.closeFiles();
      throw e;
    }
    return wal;
  }

  // ---- recovery ----

  private async recover(): Promise<void> {
    const found: { id: number; baseIndex: number; name: string }[] = [];
    for (const name of this.disk.list(this.dir)) {
      const p = parseSegmentName(name);
      if (p) found.push({ ...p, name });
    }
    found.sort((a, b) => a.id - b.id);
    let removed = false;
    for (const [i, f] of found.entries()) {
      const path = join(this.dir, f.name);
      if (f.id < this.meta.minSegmentId) {
        // Left over from before an installed snapshot whose metadata is already durable.
        this.disk.unlink(path);
        removed = true;
        continue;
      }
      const seg = await this.scanSegment(path, f.id, f.baseIndex, i === found.length - 1);
      if (seg) this.addSegment(seg);
      else removed = true;
    }
    this.scanWindow = undefined;
    if (removed) await this.disk.syncDir(this.dir);
    if (this.segments.length === 0) await this.createSegment();
    assert(this.meta.snapshot.index >= this.meta.compactIndex, "snapshot below compaction point");
    // Finish a compaction that crashed between its metadata write and its unlinks.
    await this.deleteCompactedSegments();
    this.log("info", `opened log ${this.dir}: entries ${this.firstIndex()}..${this.lastIndex()} in ${this.segments.length} segment(s)`);
  }

  private readAll(file: DiskFile): Uint8Array {
    const buf = new Uint8Array(file.size());
    const n = file.read(buf, 0);
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  /** Scan one segment into the index. Returns undefined when it was an unfinished creation (deleted). */
  private async scanSegment(path: string, id: number, baseIndex: number, isTail: boolean): Promise<Segment | undefined> {
    const file = this.disk.open(path, false);
    const size = file.size();
    this.scanWindow ??= new ReadWindow(SCAN_WINDOW_BYTES, BATCH_HEADER + MAX_BATCH_BYTES + COMMIT_FRAME);
    const w = this.scanWindow;
    w.reset(file, size);
    const header = w.ensure(0, SEGMENT_HEADER) ? parseSegmentHeader(w.bytes()) : undefined;
    if (!header) {
      // Rare (a crash while creating the segment, or damage): the whole file is read and searched.
      const buf = this.readAll(file);
      if (isTail && findValidBatch(buf, 0, lastNonZero(buf, 0) + 1) < 0) {
        this.log("warn", `${path}: removing a segment whose creation did not finish`);
        file.close();
        this.disk.unlink(path);
        return undefined;
      }
      file.close();
      throw new CorruptError(`${path}: segment header damaged at offset 0`);
    }
    if (header.version > SEGMENT_VERSION) {
      file.close();
      throw new CorruptError(
        `${path}: written by a newer edgenode (segment format version ${header.version}; this edgenode reads version ${SEGMENT_VERSION}): start it with a newer edgenode`,
      );
    }
    if (header.id !== id || header.version !== SEGMENT_VERSION) {
      file.close();
      throw new CorruptError(
        `${path}: header names segment ${header.id} version ${header.version}, expected ${id} version ${SEGMENT_VERSION}`,
      );
    }
    const seg: Segment = { id, baseIndex, path, file, size: SEGMENT_HEADER, maxWritten: 0, zeroedTo: 0 };
    let off = SEGMENT_HEADER;
    while (off < size) {
      // ensure() fills the whole window from off, so the batches after this one are read with it.
      let h: BatchHeader | undefined;
      if (w.ensure(off, BATCH_HEADER)) {
        h = readBatchHeader(w.bytes(), off - w.base());
        if (h && !(w.ensure(off, h.totalLen) && batchIntact(w.bytes(), off - w.base(), h))) h = undefined;
      }
      if (!h) {
        // Zeros to the end: the unused, preallocated rest of the segment.
        const nonZeroEnd = lastNonZeroIn(w, off, size) + 1;
        if (nonZeroEnd <= off) break;
        // A batch ends in a non-zero commit frame (then at most its 4 reserved zero bytes), so none
        // can start in the zeros past nonZeroEnd. Damage is rare: what remains is read whole.
        const rest = new Uint8Array(Math.min(size, nonZeroEnd + COMMIT_FRAME) - off);
        const got = file.read(rest, off);
        const found = findValidBatch(rest.subarray(0, got), 8, nonZeroEnd - off);
        const next = found < 0 ? -1 : off + found;
        const expect = this.index.last + 1;
        if (!isTail || next >= 0) {
          file.close();
          throw new CorruptError(
            `${path}: damaged batch at offset ${off} (log index about ${expect}) before committed data` +
              (next >= 0 ? ` at offset ${next}` : ` in a sealed segment`),
          );
        }
        this.log(
          "warn",
          `${path}: cutting a torn tail of ${nonZeroEnd - off} bytes at offset ${off} (index ${expect} on was never acknowledged)`,
        );
        // A preallocated segment keeps its length: the torn bytes become zeros, a clean end again.
        if (this.preallocate) file.write(new Uint8Array(nonZeroEnd - off), off);
        else file.truncate(off);
        await file.sync();
        break;
      }
      this.replayBatch(w.bytes(), off - w.base(), w.base(), h, seg, path);
      off += h.totalLen;
    }
    seg.size = off;
    seg.zeroedTo = Math.max(off, file.size());
    return seg;
  }

  /** Replay the intact batch at buf[off]; buf[0] is the file's byte at fileBase. */
  private replayBatch(buf: Uint8Array, off: number, fileBase: number, h: BatchHeader, seg: Segment, path: string): void {
    const at = fileBase + off;
    const lastInBatch = h.firstIndex + h.count - 1;
    seg.maxWritten = Math.max(seg.maxWritten, lastInBatch);
    if (lastInBatch <= this.meta.compactIndex) {
      // Wholly compacted, but still the record that everything after its first index was replaced:
      // entries above the compaction point replayed from earlier batches are stale.
      this.index.truncateAfter(this.meta.compactIndex);
      return;
    }
    if (h.firstIndex > this.index.last + 1) {
      throw new CorruptError(
        `${path}: batch at offset ${at} starts at index ${h.firstIndex} but the log ends at ${this.index.last} (a segment is missing)`,
      );
    }
    this.index.truncateAfter(Math.max(h.firstIndex - 1, this.meta.compactIndex));
    const err = batchFrames(buf, off, h, (f) => {
      if (f.index > this.meta.compactIndex) this.index.push(f.index, f.term, seg.id, fileBase + f.offset, f.dataLen);
    });
    if (err) throw new CorruptError(`${path}: batch at offset ${at} (index ${h.firstIndex}): ${err}`);
  }

  private addSegment(seg: Segment): void {
    this.segments.push(seg);
    this.byId.set(seg.id, seg);
  }

  private async createSegment(): Promise<Segment> {
    const prev = this.segments.at(-1);
    const id = Math.max(this.meta.minSegmentId, prev ? prev.id + 1 : 1);
    assert(id < 2 ** 32, "segment id space exhausted");
    const base = this.index.last + 1;
    const path = join(this.dir, segmentName(id, base));
    const file = this.disk.open(path, true);
    file.truncate(0);
    file.write(encodeSegmentHeader(id, base), 0);
    // The first chunk of zeros is synced with the header, so the first appends already overwrite.
    const zeroedTo = this.preallocate ? Math.min(this.segmentBytes, PREFILL_CHUNK) : SEGMENT_HEADER;
    if (zeroedTo > SEGMENT_HEADER) file.write(ZEROS.subarray(0, zeroedTo - SEGMENT_HEADER), SEGMENT_HEADER);
    await file.sync();
    await this.disk.syncDir(this.dir);
    const seg: Segment = { id, baseIndex: base, path, file, size: SEGMENT_HEADER, maxWritten: 0, zeroedTo };
    this.addSegment(seg);
    return seg;
  }

  // ---- LogReader ----

  initialState(): { hardState: HardState; config: Configuration } {
    // The configuration is the snapshot's; ConfChange entries after it are replayed by the raft
    // core as it (re)applies them ("takes effect when applied").
    return { hardState: this.stable.get().hardState, config: this.meta.snapshot.config };
  }

  firstIndex(): number {
    return this.index.first;
  }

  lastIndex(): number {
    return this.index.last;
  }

  term(index: number): number {
    assertIndex(index, "index");
    if (index === 0) return 0;
    if (index === this.meta.compactIndex) return this.meta.compactTerm;
    if (index < this.index.first) throw new CompactedError(index, this.index.first);
    if (index > this.index.last) throw new UnavailableError(index, this.index.last);
    return this.index.term(index);
  }

  snapshotMeta(): SnapshotMeta {
    return this.meta.snapshot;
  }

  /** Returned entries may be shared with the cache: callers must not mutate them. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assertIndex(lo, "lo");
    assertIndex(hi, "hi");
    assert(lo <= hi, () => `entries(${lo}, ${hi}): lo > hi`);
    if (lo < this.index.first) throw new CompactedError(lo, this.index.first);
    if (hi > this.index.last + 1) throw new UnavailableError(hi - 1, this.index.last);
    const out: Entry[] = [];
    let bytes = 0;
    let i = lo;
    while (i < hi) {
      const cached = this.cache.get(i);
      if (cached) {
        bytes += entrySize(cached);
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(cached);
        i++;
        continue;
      }
      // Read a span of consecutive frames of one segment with one read.
      const segId = this.index.segment(i);
      const start = this.index.offset(i);
      let j = i;
      let end = start;
      let spanBytes = bytes;
      while (j < hi && this.index.segment(j) === segId && !this.cache.get(j)) {
        const e = this.index.offset(j) + entryFrameBytes(this.index.dataLen(j));
        if (j > i && e - start > READ_SPAN_BYTES) break;
        spanBytes += this.index.dataLen(j) + 24;
        if (j > i && spanBytes > maxBytes) break;
        end = e;
        j++;
      }
      const seg = this.byId.get(segId);
      assert(seg, () => `index ${i} points at missing segment ${segId}`);
      const buf = new Uint8Array(end - start);
      const n = seg.file.read(buf, start);
      for (let k = i; k < j; k++) {
        const e = decodeEntryFrame(buf.subarray(0, n), this.index.offset(k) - start, k);
        if (typeof e === "string") {
          throw new CorruptError(`${seg.path}: entry ${k} at offset ${this.index.offset(k)} is damaged on read: ${e}`);
        }
        // The span buffer is private to this call, so views into it are safe to hand out.
        bytes += entrySize(e);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
      i = j;
    }
    return out;
  }

  // ---- LogWriter ----

  append(entries: Entry[]): Promise<void> {
    return this.serial("append", () => this.doAppend(entries));
  }

  setHardState(hs: HardState): Promise<void> {
    this.checkUsable();
    return this.stable.set({ hardState: hs }).catch((e) => this.fail(e));
  }

  setSnapshot(meta: SnapshotMeta): Promise<void> {
    return this.serial("setSnapshot", async () => {
      checkSnapshotMeta(meta);
      assert(meta.index >= this.meta.snapshot.index, () => `snapshot ${meta.index} older than ${this.meta.snapshot.index}`);
      assert(meta.index <= this.index.last, () => `snapshot ${meta.index} beyond last index ${this.index.last}`);
      assert(
        this.term(meta.index) === meta.term,
        () => `snapshot term ${meta.term} does not match log term ${this.term(meta.index)} at ${meta.index}`,
      );
      await this.writeMeta({ ...this.meta, snapshot: meta });
    });
  }

  compact(index: number): Promise<void> {
    return this.serial("compact", async () => {
      assertIndex(index, "compact index");
      if (index <= this.meta.compactIndex) return;
      assert(index <= this.meta.snapshot.index, () => `compact(${index}) passes the snapshot at ${this.meta.snapshot.index}`);
      assert(index <= this.index.last, () => `compact(${index}) beyond last index ${this.index.last}`);
      const term = this.term(index);
      await this.writeMeta({ ...this.meta, compactIndex: index, compactTerm: term });
      this.index.dropThrough(index);
      this.cache.dropThrough(index);
      await this.deleteCompactedSegments();
    });
  }

  installSnapshot(meta: SnapshotMeta): Promise<void> {
    return this.serial("installSnapshot", async () => {
      checkSnapshotMeta(meta);
      assert(meta.index >= this.meta.snapshot.index, () => `installing snapshot ${meta.index} older than ${this.meta.snapshot.index}`);
      await this.prefilling;
      const tail = this.segments.at(-1);
      const newId = (tail ? tail.id : 0) + 1;
      // Commit point: segments below newId are void from here on.
      await this.writeMeta({ v: 1, compactIndex: meta.index, compactTerm: meta.term, snapshot: meta, minSegmentId: newId });
      this.index = new OffsetIndex(meta.index + 1);
      this.cache.clear();
      for (const s of this.segments.splice(0)) {
        s.file.close();
        this.byId.delete(s.id);
        this.disk.unlink(s.path);
      }
      await this.createSegment(); // syncs the directory, covering the unlinks
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => {});
    await this.prefilling;
    this.closeFiles();
  }

  /** For tests and metrics: segment files currently part of the log. */
  segmentPaths(): string[] {
    return this.segments.map((s) => s.path);
  }

  // ---- internals ----

  private closeFiles(): void {
    for (const s of this.segments) s.file.close();
    this.metaFile.close();
    if (this.ownsStable) this.stable.close();
  }

  private checkUsable(): void {
    if (this.closed) throw new DiskError(`log ${this.dir} is closed`);
    if (this.failed) throw new DiskError(`log ${this.dir} stopped after an earlier disk error: ${this.failed.message}`);
  }

  private fail(e: unknown): never {
    // Any write or fsync failure is final: what reached the disk is unknown, so nothing may follow.
    const err = e instanceof Error ? e : new Error(String(e));
    if (!this.failed && (e instanceof DiskError || e instanceof CorruptError)) {
      this.failed = err;
      this.log("error", `log ${this.dir} stopped: ${err.message}`);
    }
    throw e;
  }

  private serial(_what: string, op: () => Promise<void>): Promise<void> {
    const run = async () => {
      this.checkUsable();
      try {
        await op();
      } catch (e) {
        this.fail(e);
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  private async writeMeta(next: LogMeta): Promise<void> {
    await this.metaFile.write(next);
    this.meta = next;
  }

  private async doAppend(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const first = (entries[0] as Entry).index;
    assertIndex(first, "first index");
    assert(first >= this.index.first, () => `append at ${first} below first index ${this.index.first}`);
    assert(first <= this.index.last + 1, () => `append at ${first} leaves a gap after ${this.index.last}`);
    if (first <= this.index.last) {
      const commit = this.stable.get().hardState.commit;
      assert(first > commit, () => `append at ${first} would truncate committed entries (commit ${commit})`);
    }
    let prevTerm = this.term(first - 1);
    let totalFrameBytes = 0;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as Entry;
      // One cheap combined test per entry; the assertions (with their messages) run only on failure.
      const ok =
        e.index === first + k &&
        Number.isSafeInteger(e.term) &&
        e.term >= prevTerm &&
        e.term > 0 &&
        (e.type === 0 || e.type === 1) &&
        e.data.length <= MAX_ENTRY_BYTES;
      if (!ok) {
        assert(e.index === first + k, () => `entries not contiguous at position ${k}`);
        assertIndex(e.term, "term");
        assert(e.term >= prevTerm && e.term > 0, () => `entry ${e.index} term ${e.term} below previous ${prevTerm}`);
        assert(e.type === 0 || e.type === 1, () => `entry ${e.index} has unknown type ${e.type}`);
        assert(e.data.length <= MAX_ENTRY_BYTES, () => `entry ${e.index} of ${e.data.length} bytes exceeds ${MAX_ENTRY_BYTES}`);
      }
      prevTerm = e.term;
      totalFrameBytes += entryFrameBytes(e.data.length);
    }
    // Split only when the append exceeds one batch's bounds; each part is a complete batch.
    const parts: Entry[][] = [];
    if (totalFrameBytes <= MAX_BATCH_BYTES - BATCH_HEADER * 2 && entries.length <= MAX_BATCH_ENTRIES) {
      parts.push(entries);
    } else {
      let cur: Entry[] = [];
      let curBytes = 0;
      for (const e of entries) {
        const b = entryFrameBytes(e.data.length);
        if (cur.length > 0 && (curBytes + b > MAX_BATCH_BYTES - BATCH_HEADER * 2 || cur.length >= MAX_BATCH_ENTRIES)) {
          parts.push(cur);
          cur = [];
          curBytes = 0;
        }
        cur.push(e);
        curBytes += b;
      }
      parts.push(cur);
    }

    const placed: { part: Entry[]; seg: Segment; base: number; offsets: number[] }[] = [];
    const toCache: Entry[][] = [];
    const dirty = new Set<Segment>();
    for (const part of parts) {
      let seg = this.segments.at(-1) as Segment;
      const partBytes = parts.length === 1 ? BATCH_HEADER + COMMIT_FRAME + totalFrameBytes : batchBytes(part);
      if (seg.size > SEGMENT_HEADER && seg.size + partBytes > this.segmentBytes) {
        // The old tail must be durable before a newer segment exists: only the tail may be torn.
        if (dirty.has(seg)) await seg.file.sync();
        dirty.delete(seg);
        await this.prefilling;
        seg = await this.createSegment();
      }
      // An entry whose data does not own its buffer is cached as a view into the encoded batch (see
      // below), which must then be a buffer of its own; otherwise the batch is laid out in a reused
      // scratch buffer, copied into the page cache by the write, and never referenced again.
      let owned = true;
      for (let k = 0; k < part.length && owned; k++) {
        const d = (part[k] as Entry).data;
        owned = d.byteLength === d.buffer.byteLength;
      }
      const enc = encodeBatch(part, owned ? this.scratch() : undefined, partBytes);
      seg.file.write(enc.bytes, seg.size);
      placed.push({ part, seg, base: seg.size, offsets: enc.offsets });
      seg.size += enc.bytes.length;
      seg.maxWritten = Math.max(seg.maxWritten, (part.at(-1) as Entry).index);
      dirty.add(seg);
      // The cache holds no second copy of the data: an entry whose data owns its whole buffer is
      // cached as it is; any other gets a view into the encoded batch, so a small entry cut from a
      // large receive buffer does not keep that buffer alive.
      if (owned) {
        toCache.push(part);
        continue;
      }
      const buf = enc.bytes.buffer;
      const views: Entry[] = new Array<Entry>(part.length);
      for (let k = 0; k < part.length; k++) {
        const e = part[k] as Entry;
        const o = enc.bytes.byteOffset + (enc.offsets[k] as number) + ENTRY_HEADER;
        views[k] = { index: e.index, term: e.term, type: e.type, data: new Uint8Array(buf, o, e.data.length) };
      }
      toCache.push(views);
    }
    for (const s of dirty) await s.file.sync();
    // Durable: now visible to readers.
    this.index.truncateAfter(first - 1);
    this.cache.truncateAfter(first - 1);
    for (const p of placed) {
      for (let k = 0; k < p.part.length; k++) {
        const e = p.part[k] as Entry;
        this.index.push(e.index, e.term, p.seg.id, p.base + (p.offsets[k] as number), e.data.length);
      }
    }
    for (const c of toCache) this.cache.add(c);
    this.prefill();
  }

  /**
   * Keep the tail zero-filled up to PREFILL_AHEAD past its end. The zeros are written here, on the
   * event loop between appends (a page-cache copy, about 1 ms for 2 MiB), always past the tail's
   * current end, so they can never overwrite a batch; the fdatasync that makes them durable runs in
   * the background, outside the append chain.
   */
  private prefill(): void {
    if (!this.preallocate || this.prefilling || this.failed || this.closed) return;
    const seg = this.segments.at(-1) as Segment;
    const target = Math.min(this.segmentBytes, seg.size + PREFILL_AHEAD);
    if (Math.max(seg.zeroedTo, seg.size) >= Math.min(this.segmentBytes, seg.size + PREFILL_AHEAD / 2)) return;
    try {
      for (let from = Math.max(seg.zeroedTo, seg.size); from < target; from = seg.zeroedTo) {
        const len = Math.min(PREFILL_CHUNK, target - from);
        seg.file.write(ZEROS.subarray(0, len), from);
        seg.zeroedTo = from + len;
      }
    } catch (e) {
      // Out of space, say: appends go on without preallocation and fail on their own if they must.
      this.preallocate = false;
      this.log("warn", `${seg.path}: preallocation stopped: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.prefilling = seg.file
      .sync()
      .catch((e) => {
        // An fdatasync error may have consumed the error report of data written before it: the
        // log cannot trust what it wrote, so it stops (see fail()).
        try {
          this.fail(e);
        } catch {}
      })
      .finally(() => {
        this.prefilling = undefined;
      });
  }

  private scratchBuf: Uint8Array | undefined;
  /** The reused batch buffer: enough for typical batches; a larger one is encoded into its own. */
  private scratch(): Uint8Array {
    this.scratchBuf ??= new Uint8Array(SCRATCH_BYTES);
    return this.scratchBuf;
  }

  private async deleteCompactedSegments(): Promise<void> {
    // Only a prefix whose every entry ever written is compacted: replaying what remains then gives
    // the same log above the compaction point (see the replay rule in replayBatch).
    let n = 0;
    while (n < this.segments.length - 1 && (this.segments[n] as Segment).maxWritten <= this.meta.compactIndex) n++;
    if (n === 0) return;
    await this.prefilling;
    for (const s of this.segments.splice(0, n)) {
      s.file.close();
      this.byId.delete(s.id);
      this.disk.unlink(s.path);
    }
    await this.disk.syncDir(this.dir);
  }
}

function checkSnapshotMeta(meta: SnapshotMeta): void {
  assertIndex(meta.index, "snapshot index");
  assertIndex(meta.term, "snapshot term");
  assert(Array.isArray(meta.config.servers), "snapshot config has no servers list");
}

/** Offset of the first intact batch starting in [from, end) (8-byte aligned scan), or -1. */
function findValidBatch(buf: Uint8Array, from: number, end = buf.length): number {
  for (let off = (from + 7) & ~7; off + BATCH_HEADER <= buf.length && off < end; off += 8) {
    const h = readBatchHeader(buf, off);
    if (h && batchIntact(buf, off, h)) return off;
  }
  return -1;
}

const ZERO_CHUNK = Buffer.alloc(64 * 1024);
/** Offset of the last non-zero byte of buf at or after from, or from - 1 when all are zero. */
function lastNonZero(buf: Uint8Array, from: number): number {
  // Compared 64 KiB at a time against zeros (a native memcmp): a 64 MiB preallocated tail is
  // checked on every open.
  let end = buf.length;
  while (end > from) {
    const start = Math.max(from, end - ZERO_CHUNK.length);
    const part = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
    if (!part.equals(ZERO_CHUNK.subarray(0, end - start))) {
      for (let i = end - 1; i >= start; i--) if (buf[i] !== 0) return i;
    }
    end = start;
  }
  return from - 1;
}

/** File offset of the last non-zero byte in [from, size), or from - 1 when all are zero; read through w. */
function lastNonZeroIn(w: ReadWindow, from: number, size: number): number {
  let last = from - 1;
  for (let p = from; p < size; ) {
    const n = Math.min(w.capacity(), size - p);
    w.ensure(p, n);
    const rel = p - w.base();
    const b = w.bytes();
    const got = Math.min(n, b.length - rel);
    if (got <= 0) break;
    const k = lastNonZero(b.subarray(0, rel + got), rel);
    if (k >= rel) last = w.base() + k;
    p += got;
  }
  return last;
}
