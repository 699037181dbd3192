// What one simulated server keeps across a crash: either the in-memory MemStorage (every write is
// durable at once) or the real Wal and StableStore on a SimDisk, whose syncs the simulation completes
// one by one, so a crash can land inside a write, lose it or tear it. Both are driven only by awaits
// on promises the simulation settles itself: no timers, no real I/O, so a run is a function of its seed.
import type { Configuration, HardState, LogStorage, SnapshotMeta } from "../../src/raft/storage.ts";
import { SimDisk, SimStableStore, SimWal } from "../../src/storage/sim_disk.ts";
import type { Wal } from "../../src/storage/wal.ts";
import { MemStorage } from "./mem_storage.ts";

export type DiskMode = "mem" | "sim";

export interface DurableStore {
  /** The log the raft core of the current incarnation reads. */
  readonly log: LogStorage;
  hardState(): HardState;
  snapshot(): SnapshotMeta;
  /**
   * Persist through `op`. With `crash` the process dies during it (memory: before it; disk: at one
   * of its syncs, chosen by the seed, with the unsynced bytes lost or torn, or right after it) and
   * the store is reopened from what survived. Returns false when it crashed.
   */
  write(op: (log: LogStorage) => Promise<void>, crash: boolean): Promise<boolean>;
  /** The process died between writes; the store is reopened from what survived. */
  crash(): Promise<void>;
  /** Test-only driver bug: drop the vote from what a restart reads (memory mode only). */
  forgetVote(): void;
  readonly counters: { midWriteCrashes: number; tornTails: number };
}

export async function openStore(mode: DiskMode, id: string, config: Configuration, rng: () => number): Promise<DurableStore> {
  if (mode === "mem") return new MemStore(config);
  return WalStore.open(id, config, rng);
}

class MemStore implements DurableStore {
  readonly log: MemStorage;
  readonly counters = { midWriteCrashes: 0, tornTails: 0 };
  constructor(config: Configuration) {
    this.log = new MemStorage(config);
  }
  hardState(): HardState {
    return this.log.hardState;
  }
  snapshot(): SnapshotMeta {
    return this.log.snapshot;
  }
  async write(op: (log: LogStorage) => Promise<void>, crash: boolean): Promise<boolean> {
    if (crash) return false; // MemStorage writes are atomic: a crash "during" one is a crash before it
    await op(this.log);
    return true;
  }
  async crash(): Promise<void> {}
  forgetVote(): void {
    this.log.hardState = { ...this.log.hardState, vote: "" };
  }
}

/** Microtask hops a Wal operation may take between two syncs before we call it stuck. */
const MAX_HOPS = 10_000;

class WalStore implements DurableStore {
  readonly counters = { midWriteCrashes: 0, tornTails: 0 };
  private readonly disk = new SimDisk({ manualSync: true });
  private readonly dir: string;
  private wal!: Wal;

  private constructor(
    id: string,
    private readonly rng: () => number,
  ) {
    this.dir = `/${id}`;
  }

  static async open(id: string, config: Configuration, rng: () => number): Promise<WalStore> {
    const s = new WalStore(id, rng);
    await s.reopen();
    // The bootstrap configuration is recorded as a snapshot at index 0, as the server does.
    if (config.servers.length > 0) await s.write((log) => log.setSnapshot({ index: 0, term: 0, config: structuredClone(config) }), false);
    return s;
  }

  get log(): LogStorage {
    return this.wal;
  }
  hardState(): HardState {
    return this.wal.initialState().hardState;
  }
  snapshot(): SnapshotMeta {
    return this.wal.snapshotMeta();
  }

  /**
   * Run `start()` to completion, completing the disk's syncs one at a time. The only thing a Wal operation
   * on a SimDisk waits for is a sync, so between two syncs it needs only microtask hops. With
   * `crash`, each pending sync is where the process dies with probability 1/2 (decided by the seed).
   */
  private async drive(start: () => Promise<unknown>, crash: boolean): Promise<boolean> {
    let done = false;
    let err: unknown;
    // Counted before starting: an operation runs synchronously up to its first sync.
    let seen = this.disk.syncCount;
    start().then(
      () => {
        done = true;
      },
      (e) => {
        done = true;
        err = e;
      },
    );
    for (;;) {
      let hops = 0;
      while (!done && this.disk.syncCount === seen) {
        if (++hops > MAX_HOPS) throw new Error(`${this.dir}: a storage operation waits on something other than a sync`);
        await null;
      }
      if (done) break;
      seen = this.disk.syncCount;
      if (crash && this.rng() < 0.5) {
        this.counters.midWriteCrashes++;
        await this.crash();
        return false;
      }
      this.disk.completeSyncs();
    }
    if (err !== undefined) throw err;
    if (crash) {
      await this.crash();
      return false;
    }
    return true;
  }

  async write(op: (log: LogStorage) => Promise<void>, crash: boolean): Promise<boolean> {
    return this.drive(() => op(this.wal), crash);
  }

  async crash(): Promise<void> {
    this.disk.crash(this.rng);
    await this.reopen();
  }

  private async reopen(): Promise<void> {
    const open = async () => {
      const stable = await SimStableStore.open(this.disk, this.dir);
      return SimWal.open(this.disk, this.dir, {
        stable,
        // Small segments and cache: segment rolls, compaction deletes and disk reads happen often.
        segmentBytes: 4096,
        cacheBytes: 1024,
        log: (level, msg) => {
          if (level === "warn" && msg.includes("torn tail")) this.counters.tornTails++;
        },
      });
    };
    let wal: Wal | undefined;
    await this.drive(() => open().then((w) => (wal = w)), false);
    this.wal = wal!;
  }

  forgetVote(): void {
    throw new Error("forgetVote is a memory-mode variant; the stable store refuses to drop a vote within a term");
  }
}
