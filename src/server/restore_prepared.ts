// The new state a restore swaps in, built ahead of its entry's apply: the leader builds it while the
// upload arrives, a staging peer while the staging stream arrives (or, when it relays the upload, from
// its file once the upload has passed through), so applying the entry is a swap, or a wait for the build under
// way. One restore at a time; held for a bounded time once built; let go when the restore is given up or
// superseded. Also remembers the restores the leader gave up on.
import { type DeadlineTimer, deadlineTimer } from "../lib/deadline.ts";
import { assert } from "../lib/assert.ts";
import { formatDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { readSnapshot } from "../snapshot/reader.ts";
import { RECORD_BATCHES, type BatchedRecords } from "../state/restore.ts";
import { StateStore } from "../state/state_store.ts";
import { owned } from "./chunk_ownership.ts";
import type { StagedSnapshots } from "./staged_snapshots.ts";

/**
 * A state built ahead for a restore whose entry has not applied by then is let go: its entry applies within
 * a round trip of the staging, or the restore failed (the leader crashed before proposing it, say) and the
 * state, as big as the whole store, would otherwise be held until the next restore. Should the entry apply
 * after all, the state is built again from the staged file.
 */
export const PREPARED_TTL_MS = 10 * 60_000;
/** Restores the leader gave up on, remembered so that a staging still ending here keeps nothing of them. */
const MAX_DROPPED_IDS = 64;

/** A state built from a snapshot file, and that file's SHA-256 (hex): the entry names the file by it. */
export interface Built {
  store: StateStore;
  sha256: string;
}

export class PreparedStates {
  /** The state being built (or built), by restore id, with its file's digest once known. */
  private prepared: { id: string; built: Promise<Built> } | undefined;
  private preparedDeadline: DeadlineTimer | undefined;
  /** Ids of restores the leader gave up on before proposing them (Snapshot.Unstage), oldest first. */
  private readonly dropped = new Set<string>();
  /** Bumped when a background build is no longer wanted (a newer restore, or another one applied). */
  private buildSeq = 0;

  constructor(
    private readonly staged: StagedSnapshots,
    private readonly log: Logger,
    private readonly ttlMs = PREPARED_TTL_MS,
  ) {
    assert(Number.isSafeInteger(ttlMs) && ttlMs > 0, "preparedTtlMs is a positive integer");
  }

  /** The restore whose new state is being built or held here, if any. */
  get id(): string | undefined {
    return this.prepared?.id;
  }

  isDropped(id: string): boolean {
    return this.dropped.has(id);
  }

  /** Keep a state the leader built from the upload itself, superseding any build under way. */
  adopt(id: string, sha256: string, store: StateStore): void {
    this.buildSeq++;
    this.hold(id, Promise.resolve({ store, sha256 }));
  }

  /**
   * Hold the build `make` starts (a staging peer's, fed by the staging stream) as restore `id`'s, from its
   * start: an entry applying meanwhile waits for it. `superseded()` turns true once nobody waits for it
   * (pass the records through `abandonable`). Returns the build; its failure is the caller's to handle.
   */
  receive<B extends Built>(id: string, make: (superseded: () => boolean) => Promise<B>): Promise<B> {
    const seq = ++this.buildSeq;
    const built = make(() => this.buildSeq !== seq);
    // Awaited by the caller (the staging), and by take() through catch: never unhandled.
    built.catch(() => undefined);
    this.hold(id, built);
    return built;
  }

  /**
   * Build the state of a staged file in the background, for the restore entry's apply to swap in; `chunks`:
   * the file's bytes from a handle opened already (the file is still being put in place), else the staged file.
   */
  build(id: string, sha256: string, chunks?: AsyncIterable<Uint8Array>): void {
    const t0 = performance.now();
    const seq = ++this.buildSeq;
    const superseded = () => this.buildSeq !== seq;
    const built = (async () => {
      // `sha256` is the digest this server computed as it wrote the file: reading it again, the frames'
      // CRC32s find damage, and hashing it a second time would find nothing more.
      const reader = readSnapshot(chunks ?? this.staged.open(id), { release: owned("file"), verifiedSha256: sha256 });
      await reader.header;
      const store = await StateStore.restore(abandonable(reader.records, superseded), 1);
      const got = reader.result;
      if (!got || got.sha256 !== sha256) throw new EdgeError("CORRUPT", `staged snapshot ${id} changed on disk`);
      this.log.info("restore: new state built", { id, ms: Math.round(performance.now() - t0) });
      return { store, sha256 };
    })();
    // Failures are handled where the store is awaited (apply builds from the file again); never unhandled.
    built.catch((e: unknown) => {
      if (!superseded())
        this.log.warn("restore: building the staged state failed; it is built again when the entry applies", {
          id,
          error: (e as Error).message,
        });
    });
    this.hold(id, built);
  }

  /**
   * The state built for restore `id` with this digest, if any (undefined if its build failed), taken:
   * whatever else was being built is of a restore that never committed (or not here), and is let go.
   */
  async take(id: string, sha256: string): Promise<StateStore | undefined> {
    const mine = this.prepared?.id === id ? this.prepared.built : undefined;
    if (!mine) this.buildSeq++;
    this.clear();
    const got = mine ? await mine.catch(() => undefined) : undefined;
    return got?.sha256 === sha256 ? got.store : undefined;
  }

  /** Let go of restore `id`'s state or build (its staging failed), without marking it given up. */
  cancel(id: string): void {
    if (this.prepared?.id !== id) return;
    this.buildSeq++;
    this.clear();
  }

  /** Forget restore `id`: remember it is given up, and let go of any state built for it. */
  drop(id: string): void {
    this.dropped.add(id);
    while (this.dropped.size > MAX_DROPPED_IDS) this.dropped.delete(this.dropped.values().next().value!);
    if (this.prepared?.id === id) {
      this.buildSeq++;
      this.clear();
    }
  }

  /**
   * Keep `built` as the state to swap in when restore `id` applies, for at most the hold time from the end
   * of its build: a build under way is bounded by the staging that feeds it.
   */
  private hold(id: string, built: Promise<Built>): void {
    this.clear();
    const held = { id, built };
    this.prepared = held;
    const arm = () => {
      if (this.prepared !== held) return;
      this.preparedDeadline = deadlineTimer(this.ttlMs, expire, { keepAlive: false });
    };
    built.then(arm, arm);
    const expire = () => {
      if (this.prepared !== held) return;
      this.log.warn(
        "restore: letting go of the state built ahead for a restore whose entry has not applied; it is built from the staged file if the entry does apply",
        { id, after: formatDuration(this.ttlMs) },
      );
      this.buildSeq++;
      this.clear();
    };
  }

  private clear(): void {
    this.preparedDeadline?.cancel();
    this.preparedDeadline = undefined;
    this.prepared = undefined;
  }
}

/** `records`, ending with an error at the next batch once `stop()` says nobody waits for them. */
export function abandonable(records: AsyncIterable<unknown>, stop: () => boolean): AsyncIterable<unknown> {
  const batched = (records as Partial<BatchedRecords>)[RECORD_BATCHES];
  const abandoned = () => new EdgeError("ABORTED", "a newer restore superseded this one");
  return {
    async *[Symbol.asyncIterator]() {
      for await (const r of records) {
        if (stop()) throw abandoned();
        yield r;
      }
    },
    ...(batched
      ? {
          async *[RECORD_BATCHES]() {
            for await (const b of batched.call(records)) {
              if (stop()) throw abandoned();
              yield b;
            }
          },
        }
      : {}),
  } as AsyncIterable<unknown>;
}
