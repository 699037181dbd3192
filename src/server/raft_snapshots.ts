// Raft snapshots on this server: taking one (automatically past snapshot_threshold, or from a
// restore's staged file) and compacting the log behind it; receiving one from the leader, installing
// it, and opening the stored one a "snap" message names for a follower.
import type { Config } from "../config/schema.ts";
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { release } from "../lib/release.ts";
import type { Message } from "../raft/message.ts";
import type { Configuration, SnapshotMeta } from "../raft/storage.ts";
import { fileChunks, readSnapshotHeader } from "../snapshot/reader.ts";
import { type RewriteResult, rewriteSnapshotHeader } from "../snapshot/rewrite.ts";
import { encodeSnapshot } from "../snapshot/writer.ts";
import type { SnapshotStore } from "../storage/snapshot_store.ts";
import type { Wal } from "../storage/wal.ts";
import type { Fsm } from "./fsm.ts";
import type { Metrics } from "./metrics.ts";

/**
 * Automatic snapshots wait this many times the last one's duration after it (see maybe). Every server
 * snapshots, and encoding a large state competes with the writes for the same cores: at 1/20 of each
 * server's time the three together still cost writes a measurable share of their throughput
 * (test/bench/RESULTS.md, cluster).
 */
const SNAPSHOT_DUTY_FACTOR = 60;
/**
 * A snapshot encodes the state on the event loop for at most about this long at a time, then lets
 * everything that is ready run (see inSlices).
 */
export const SNAPSHOT_SLICE_MS = 0.5;
/** Records between looks at the clock in inSlices. */
const SLICE_CHECK_EVERY = 64;

/** What raft snapshots need from the server. */
export interface RaftSnapshotsHost {
  readonly cfg: Config;
  readonly log: Logger;
  readonly stats: Metrics;
  readonly snapshots: SnapshotStore;
  readonly wal: Wal;
  readonly fsm: Fsm;
  /** The applied index; undefined while raft has not started. */
  applied(): number | undefined;
  /** The configuration as of the applied index. */
  config(): Configuration;
  /** An installed snapshot's configuration becomes the applied one. */
  setConfig(c: Configuration): void;
  /** The newest restore entry's index (the restore's bookkeeping): compacted away once a snapshot covers it. */
  restoreCompactIndex(): number;
  /** Why this server's apply is stopped (apply_stop.ts); undefined while it applies. */
  applyStopped?(): string | undefined;
}

/**
 * A snapshot file whose records are the state at `index` and whose SHA-256 this server verified when it
 * wrote or read it (a restore's staged file): rewritten, it is checked again by its frames' CRC32s only.
 */
export interface SnapshotSource {
  index: number;
  chunks: () => AsyncIterable<Uint8Array>;
}

export class RaftSnapshots {
  private snapshotting = false;
  private last = 0;
  private lastEnd = 0;
  private lastMs = 0;
  /** Entries past snapshot_threshold this server waits before its next automatic snapshot (see maybeSnapshot). */
  private jitter: number;

  constructor(private readonly host: RaftSnapshotsHost) {
    this.jitter = this.drawJitter();
  }

  /** The index of the newest snapshot this server took, installed or started from. */
  get lastIndex(): number {
    return this.last;
  }

  /** The state machine was loaded from the stored snapshot at `index`. */
  loaded(index: number): void {
    this.last = index;
  }

  async install(meta: SnapshotMeta): Promise<void> {
    const { snapshots, fsm } = this.host;
    // By its index and term, not the newest: a newer snapshot from a leader can be stored (and stepped)
    // while the Ready naming this one waits, and the next Ready installs that one.
    const stored = snapshots.list().find((x) => x.index === meta.index && x.term === meta.term);
    assert(stored, () => `snapshot ${meta.index} (term ${meta.term}) to install is in the store (latest ${snapshots.latest()?.index})`);
    const store = await fsm.loadFrom(snapshots.openReader(stored.id), meta.index);
    fsm.replaceStore(store);
    this.last = meta.index;
    this.host.setConfig(meta.config);
    this.host.log.info("installed snapshot from leader", { index: meta.index, term: meta.term });
  }

  /**
   * The stored file of the snapshot `m` names. Not simply the newest: the store can hold one newer than
   * the log records (taken a moment ago and not yet recorded, or received from a leader and never
   * installed), and a file sent under another snapshot's index would have the receiver apply the
   * entries between the two twice. A snapshot no longer stored fails the send; raft retries with the
   * one the log records by then.
   */
  openFor(m: Message): AsyncIterable<Uint8Array> {
    const want = m.snapshot;
    assert(want !== undefined, "a snapshot message carries its snapshot's meta");
    const s = this.host.snapshots.list().find((x) => x.index === want.index && x.term === want.term);
    if (!s) throw new EdgeError("NOT_FOUND", `snapshot ${want.index} (term ${want.term}) is no longer stored here`);
    return this.host.snapshots.openReader(s.id);
  }

  async receive(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const meta = m.snapshot;
    assert(meta !== undefined, "a snapshot message carries its snapshot's meta");
    // Stopped at an entry it does not understand, this server takes no state from past it either: the
    // leader's snapshot may hold what this binary cannot read. The leader tries again later; an upgraded
    // binary applies on from the entry (or takes the snapshot then).
    const stopped = this.host.applyStopped?.();
    if (stopped) throw new EdgeError("NOT_APPLIED", `snapshot ${meta.index} from ${m.from} refused: ${stopped}`);
    const sink = this.host.snapshots.create({ index: meta.index, term: meta.term, config: meta.config });
    try {
      for await (const c of chunks) {
        await sink.write(c);
        // An RPC stream's chunk is ours alone once read (FrameReader): written, its memory serves the next.
        release(c);
      }
      // Stored only if it is the snapshot the message names: loaded at another index, it would have the
      // entries between the two applied twice (or never).
      await sink.close(async (path) => {
        const h = await readSnapshotHeader(fileChunks(path));
        if (h.index !== meta.index || h.term !== meta.term) {
          throw new EdgeError(
            "BAD_SNAPSHOT",
            `snapshot from ${m.from} is of index ${h.index} term ${h.term}, but its message names index ${meta.index} term ${meta.term}; not stored`,
          );
        }
      });
    } catch (e) {
      sink.cancel();
      throw e;
    }
  }

  /**
   * Automatic raft snapshot once `snapshot_threshold` entries were applied since the last — and no
   * sooner than SNAPSHOT_DUTY_FACTOR times the last snapshot's duration after it ended, so writing
   * snapshots of a large state never takes more than about 1/60 of the server's time (hashicorp/raft
   * bounds it with a fixed SnapshotInterval instead, 120 s by default). The price: under steady
   * writes, a large state's log grows longer between snapshots. Small states are unaffected: their
   * snapshots take milliseconds. Each server also waits a random 0..threshold entries more, drawn anew after every
   * snapshot (hashicorp/raft jitters its snapshot timer the same way): otherwise every server snapshots
   * at the same index, and while both followers are busy encoding, the leader cannot commit.
   */
  maybe(applied: number): void {
    if (this.snapshotting || applied - this.last < this.host.cfg.server.snapshot_threshold + this.jitter) return;
    if (performance.now() - this.lastEnd < SNAPSHOT_DUTY_FACTOR * this.lastMs) return;
    void this.take().catch((e) => this.host.log.warn("snapshot failed", { error: (e as Error).message }));
  }

  /**
   * Snapshot the state at the current applied index, store it, compact the log keeping trailing_logs.
   * `from`: a verified snapshot file whose records are the state at `from.index` (a restore's staged
   * file); used, with only its header rewritten, when the applied index is still that one.
   */
  async take(from?: SnapshotSource): Promise<SnapshotMeta> {
    const { cfg, wal, fsm, snapshots, log, stats } = this.host;
    assert(this.host.applied() !== undefined, "raft is running");
    if (this.snapshotting) throw new EdgeError("CONFLICT", "a snapshot is already being taken");
    this.snapshotting = true;
    const t0 = performance.now();
    let rewritten = false;
    try {
      // The view and the applied index are taken together, synchronously.
      const view = fsm.state.view();
      const index = this.host.applied() ?? 0;
      // The configuration as of the applied index (the state machine's, which applies configuration
      // changes in order with the rest): the core's may already hold a change the applier has not reached.
      const meta: SnapshotMeta = { index, term: wal.term(index), config: { servers: this.host.config().servers.map((x) => ({ ...x })) } };
      const id = `${meta.term}-${meta.index}-${Date.now()}`;
      // The staged file is used only when its header's counts are the state's (tables it does not
      // list count as empty); anything else is encoded from the state as usual.
      let staged: SnapshotSource | undefined;
      if (from !== undefined && from.index === index) {
        const old = await readSnapshotHeader(from.chunks()).catch(() => undefined);
        const counts: Record<string, number> = view.counts();
        const same =
          old !== undefined &&
          [...new Set([...Object.keys(counts), ...Object.keys(old.counts)])].every((t) => (counts[t] ?? 0) === (old.counts[t] ?? 0));
        if (same) staged = from;
      }
      // The rewrite hashes its output for the new trailer: the store records that digest instead of
      // hashing the same bytes again.
      const written: RewriteResult = { size: 0, sha256: "" };
      const sink = snapshots.create({ ...meta, id }, { digestGiven: staged !== undefined });
      try {
        const chunks = staged
          ? rewriteSnapshotHeader(staged.chunks(), () => fsm.snapshotHeader(view, meta, id), { inputVerified: true, result: written })
          : encodeSnapshot(fsm.snapshotHeader(view, meta, id), inSlices(view.records(), SNAPSHOT_SLICE_MS));
        rewritten = staged !== undefined;
        for await (const value of chunks) {
          await sink.write(value);
          // The encoder's (or the staged file read's) buffer, ours alone: written, its memory serves the next.
          release(value);
          // Reading a staged file runs as a chain of promise continuations that never lets I/O in (the
          // encoding yields inside inSlices as well).
          if (staged) await yieldToLoop();
        }
        await sink.close(undefined, staged ? written : undefined);
      } catch (e) {
        sink.cancel();
        throw e;
      }
      await wal.setSnapshot(meta);
      // A restore entry is compacted away as soon as a snapshot covers it: a lagging server then gets this
      // snapshot instead of the entry, whose staged file may be gone from every server it can still reach.
      const restoreIndex = this.host.restoreCompactIndex();
      const restoreTo = restoreIndex <= index ? restoreIndex : 0;
      const compactTo = Math.max(index - cfg.server.trailing_logs, restoreTo);
      if (compactTo > wal.firstIndex()) await wal.compact(compactTo);
      this.last = index;
      this.lastEnd = performance.now();
      this.lastMs = this.lastEnd - t0;
      this.jitter = this.drawJitter();
      stats.observe("edgenode_raft_snapshot_ms", this.lastMs, {}, "raft snapshot duration (ms)", [1, 10, 100, 1000, 10_000, 60_000]);
      log.info("snapshot taken", {
        index,
        term: meta.term,
        ms: Math.round(this.lastMs),
        ...(rewritten ? { from: "staged restore file" } : {}),
      });
      return meta;
    } finally {
      this.snapshotting = false;
    }
  }

  private drawJitter(): number {
    return Math.floor(Math.random() * this.host.cfg.server.snapshot_threshold);
  }
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * `records`, handed out with a pause of the event loop after about every `sliceMs` of work (the
 * consumer's time included): everything ready (requests, raft messages, fsync completions) runs
 * before the next slice. Pausing only between blocks held the loop for a whole block's encoding and
 * compression at a time, which every request in flight waited for while a snapshot ran. Under load a
 * loop turn carries much other work and the snapshot's share of it shrinks; idle, it runs on at once.
 */
export async function* inSlices<T>(records: Iterable<T>, sliceMs: number): AsyncGenerator<T> {
  assert(sliceMs > 0, "a slice lasts some time");
  let since = performance.now();
  let n = 0;
  for (const r of records) {
    yield r;
    if (++n % SLICE_CHECK_EVERY === 0 && performance.now() - since >= sliceMs) {
      await yieldToLoop();
      since = performance.now();
    }
  }
}
