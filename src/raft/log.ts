// The raft log as the core sees it: the stable part read from LogReader plus an
// in-memory unstable tail (entries and possibly a snapshot not yet handed to or
// acknowledged by the driver), with the commit and applied indexes and the
// invariants on them (commit never decreases nor passes the last index; nothing
// at or below commit is ever truncated).
import { assert } from "../lib/assert.ts";
import { CompactedError, UnavailableError, entrySize } from "./storage.ts";
import type { Entry, LogReader, SnapshotMeta } from "./storage.ts";

export class RaftLog {
  /** Entries not yet persisted, starting at `offset`. */
  unstable: Entry[] = [];
  offset: number;
  /** A snapshot received from the leader, not yet installed by the driver. */
  unstableSnapshot: SnapshotMeta | undefined;
  committed: number;
  applied: number;

  constructor(
    readonly storage: LogReader,
    committed: number,
    applied: number,
  ) {
    this.offset = storage.lastIndex() + 1;
    const first = storage.firstIndex();
    this.committed = Math.max(committed, first - 1);
    assert(
      this.committed <= storage.lastIndex(),
      () => `commit ${this.committed} is past the last stored index ${storage.lastIndex()}: was the log lost?`,
    );
    this.applied = Math.max(applied, first - 1);
    assert(this.applied <= this.committed, () => `applied ${this.applied} is past commit ${this.committed}`);
  }

  firstIndex(): number {
    return this.unstableSnapshot ? this.unstableSnapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.index;
    return this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i; throws CompactedError / UnavailableError outside firstIndex()-1 ..= lastIndex(). */
  term(i: number): number {
    const first = this.firstIndex();
    if (i < first - 1) throw new CompactedError(i, first);
    const last = this.lastIndex();
    if (i > last) throw new UnavailableError(i, last);
    if (i >= this.offset && this.unstable.length > 0) return this.unstable[i - this.offset]!.term;
    if (this.unstableSnapshot && i === this.unstableSnapshot.index) return this.unstableSnapshot.term;
    if (i === 0) return 0;
    return this.storage.term(i);
  }

  /** Term of entry i, or undefined when it is compacted or not present. */
  termOrUndefined(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    return this.term(i);
  }

  matchTerm(i: number, t: number): boolean {
    return this.termOrUndefined(i) === t;
  }

  /** Entries [lo, hi) bounded by maxBytes (at least one when lo < hi). Throws CompactedError below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    assert(hi <= this.lastIndex() + 1, () => `slice [${lo},${hi}) past last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    let size = 0;
    if (lo < this.offset) {
      out = this.storage.entries(lo, Math.min(hi, this.offset), maxBytes);
      for (const e of out) size += entrySize(e);
      if (out.length < Math.min(hi, this.offset) - lo) return out; // storage cut at maxBytes
    }
    if (hi > this.offset) {
      for (let i = Math.max(lo, this.offset); i < hi; i++) {
        const e = this.unstable[i - this.offset]!;
        const s = entrySize(e);
        if (out.length > 0 && size + s > maxBytes) break;
        size += s;
        out.push(e);
      }
    }
    return out;
  }

  /** Follower side of AppendEntries: returns the new last index when (index, logTerm) matches, else undefined. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    let conflictAt = -1;
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!;
      if (!this.matchTerm(e.index, e.term)) {
        conflictAt = k;
        break;
      }
    }
    if (conflictAt >= 0) {
      const ci = ents[conflictAt]!.index;
      assert(ci > this.committed, () => `entry ${ci} conflicts with committed entry (commit ${this.committed})`);
      this.append(conflictAt === 0 ? ents : ents.slice(conflictAt));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Append (possibly replacing an uncommitted suffix); returns the new last index. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index;
    assert(after - 1 >= this.committed, () => `truncation at ${after} is at or below commit ${this.committed}`);
    assert(after <= this.lastIndex() + 1, () => `append at ${after} leaves a gap after ${this.lastIndex()}`);
    if (after === this.offset + this.unstable.length) {
      for (const e of ents) this.unstable.push(e);
    } else if (after <= this.offset) {
      // Replaces part of the stable log: the driver's append overwrites that suffix.
      this.offset = after;
      this.unstable = ents.slice();
    } else {
      this.unstable = this.unstable.slice(0, after - this.offset);
      for (const e of ents) this.unstable.push(e);
    }
    return this.lastIndex();
  }

  commitTo(c: number): void {
    if (c <= this.committed) return;
    assert(
      c <= this.lastIndex(),
      () => `commit ${c} is out of range [last ${this.lastIndex()}]: was the log corrupted, truncated or lost?`,
    );
    this.committed = c;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(i <= this.committed && i >= this.applied, () => `applied ${i} out of range [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }

  /** The driver persisted entries up to (i, t): drop them from the unstable tail when still the same. */
  stableTo(i: number, t: number): void {
    if (this.unstable.length === 0 || i < this.offset) return;
    const k = i - this.offset;
    if (k >= this.unstable.length || this.unstable[k]!.term !== t) return;
    this.unstable = this.unstable.slice(k + 1);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.index === i) this.unstableSnapshot = undefined;
  }

  /** Replace the whole log with a snapshot point received from the leader. */
  restore(s: SnapshotMeta): void {
    assert(s.index >= this.committed, () => `snapshot ${s.index} below commit ${this.committed}`);
    this.committed = s.index;
    this.unstableSnapshot = s;
    this.unstable = [];
    this.offset = s.index + 1;
  }

  /** Committed entries not yet applied, bounded by maxBytes (at least one when any). */
  nextCommitted(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  hasNextCommitted(): boolean {
    return Math.max(this.applied + 1, this.firstIndex()) <= this.committed;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const t = this.lastTerm();
    return lastTerm > t || (lastTerm === t && lastIndex >= this.lastIndex());
  }

  /** Largest index <= i whose term is <= t (conflict hint for fast backtracking), with its term. */
  findConflictByTerm(i: number, t: number): { index: number; term: number } {
    for (; i > 0; i--) {
      const ti = this.termOrUndefined(i);
      if (ti === undefined) return { index: i, term: 0 };
      if (ti <= t) return { index: i, term: ti };
    }
    return { index: 0, term: 0 };
  }
}
