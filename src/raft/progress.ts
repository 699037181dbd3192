// The leader's view of one follower: how far it matches, what to send next, and
// the flow-control state (probe: one append at a time until a match is found;
// replicate: a window of in-flight appends bounded by count and bytes;
// snapshot: nothing until the driver reports the snapshot send's outcome).
import { assert } from "../lib/assert.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

/** In-flight appends, as (last index, bytes) in send order. */
export class Inflights {
  private idx: number[] = [];
  private sizes: number[] = [];
  private start = 0;
  bytes = 0;
  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}
  get count(): number {
    return this.idx.length - this.start;
  }
  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }
  add(index: number, bytes: number): void {
    assert(!this.full(), "inflights: add while full");
    const last = this.idx[this.idx.length - 1];
    assert(last === undefined || this.count === 0 || index > last, "inflights: indexes must grow");
    this.idx.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }
  /** Free every in-flight append whose last index is <= `to`. */
  freeLE(to: number): void {
    while (this.start < this.idx.length && this.idx[this.start]! <= to) {
      this.bytes -= this.sizes[this.start]!;
      this.start++;
    }
    if (this.start === this.idx.length) this.reset();
    else if (this.start > 1024) {
      this.idx = this.idx.slice(this.start);
      this.sizes = this.sizes.slice(this.start);
      this.start = 0;
    }
  }
  /** Free the oldest in-flight append: a heartbeat answer proves the follower is reachable, so lost appends must not stall the window forever. */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.idx[this.start]!);
  }
  reset(): void {
    this.idx = [];
    this.sizes = [];
    this.start = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append is outstanding, wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** Index of the snapshot being sent while in snapshot state. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /**
   * The leader's tick count (Raft.tickCount) at this follower's last answer; set on creation too (a new
   * leader gives each follower a fresh start). Ticks, not a clock: the core stays pure, and the driver,
   * which knows a tick's length, turns it into time.
   */
  lastHeardTick = 0;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, resume probing just after it (or after match if that is further).
    if (this.state === "snapshot") {
      const snap = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, snap + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append up to `last` of `bytes` was sent. */
  sentEntries(last: number, bytes: number): void {
    if (this.state === "replicate") {
      if (last >= this.next) {
        this.next = last + 1;
        this.inflights.add(last, bytes);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** The follower acknowledged a match at `n`; false when that is stale news. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `hint` is the highest index that may match.
   * Returns false when the rejection is stale (answers an older append).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
