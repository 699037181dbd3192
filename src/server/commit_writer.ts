// Commit-only hard states, written in the background and coalesced (one write in flight, then the
// newest): the commit index is volatile in raft (recovered from the leader), so no acknowledgement
// waits for it. A failed write is still fatal.
import type { HardState } from "../raft/storage.ts";

/** How long a commit-only hard state may wait before it is written (it is volatile state in raft). */
const COMMIT_PERSIST_INTERVAL_MS = 50;

export interface CommitWriterHost {
  write(hs: HardState): Promise<void>;
  stopped(): boolean;
  fatal(e: unknown): void;
}

export class CommitWriter {
  /** True while the background writer runs; it clears this itself (see RaftDriver.enqueueApply for why). */
  private writing = false;
  private pending: HardState | undefined;

  constructor(private readonly host: CommitWriterHost) {}

  /** A full hard state was written: it carries the newest commit, so an older commit-only write waiting must not follow it. */
  supersede(): void {
    this.pending = undefined;
  }

  later(hs: HardState): void {
    this.pending = hs;
    if (this.writing) return;
    this.writing = true;
    const loop = async () => {
      try {
        // Spaced out so the commit record's fsync does not contend with every WAL append's fsync.
        await Bun.sleep(COMMIT_PERSIST_INTERVAL_MS);
        while (this.pending && !this.host.stopped()) {
          const next = this.pending;
          this.pending = undefined;
          await this.host.write(next);
        }
      } finally {
        // No await between the loop's last look at `pending` and here.
        this.writing = false;
      }
    };
    loop().catch((e: unknown) => {
      // A write cut short by shutdown closing the store is not a disk failure.
      if (!this.host.stopped()) this.host.fatal(e);
    });
  }
}
