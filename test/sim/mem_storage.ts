// In-memory LogStorage for tests and the simulation: what it holds is what
// "survived" a crash. Writes are synchronous underneath (the async methods of
// the contract resolve at once) so a seeded run stays deterministic.
import { assert } from "../../src/lib/assert.ts";
import { CompactedError, UnavailableError, entrySize } from "../../src/raft/storage.ts";
import type { Configuration, Entry, HardState, LogStorage, SnapshotMeta } from "../../src/raft/storage.ts";

export class MemStorage implements LogStorage {
  hardState: HardState = { term: 0, vote: "", commit: 0 };
  snapshot: SnapshotMeta;
  /** Entries after the compaction point `compactIndex` (= firstIndex - 1). */
  ents: Entry[] = [];
  compactIndex = 0;
  compactTerm = 0;

  constructor(config: Configuration) {
    this.snapshot = { index: 0, term: 0, config: structuredClone(config) };
  }

  initialState(): { hardState: HardState; config: Configuration } {
    return { hardState: { ...this.hardState }, config: structuredClone(this.snapshot.config) };
  }
  firstIndex(): number {
    return this.compactIndex + 1;
  }
  lastIndex(): number {
    return this.compactIndex + this.ents.length;
  }
  term(i: number): number {
    if (i < this.compactIndex) throw new CompactedError(i, this.firstIndex());
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    if (i === this.compactIndex) return this.compactTerm;
    return this.ents[i - this.compactIndex - 1]!.term;
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - this.compactIndex - 1]!;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }
  snapshotMeta(): SnapshotMeta {
    return this.snapshot;
  }

  appendSync(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first <= this.lastIndex() + 1, `append at ${first} leaves a gap after ${this.lastIndex()}`);
    if (first <= this.compactIndex) {
      // Entries the snapshot already covers: keep only the part after it.
      entries = entries.filter((e) => e.index > this.compactIndex);
      if (entries.length === 0) return;
    }
    this.ents.length = entries[0]!.index - this.compactIndex - 1;
    for (const e of entries) this.ents.push(e);
  }
  compactSync(index: number): void {
    assert(index <= this.snapshot.index, `compact ${index} past snapshot ${this.snapshot.index}`);
    if (index <= this.compactIndex) return;
    assert(index <= this.lastIndex(), `compact ${index} past last ${this.lastIndex()}`);
    const t = this.term(index);
    this.ents = this.ents.slice(index - this.compactIndex);
    this.compactIndex = index;
    this.compactTerm = t;
  }
  installSnapshotSync(meta: SnapshotMeta): void {
    this.snapshot = structuredClone(meta);
    this.ents = [];
    this.compactIndex = meta.index;
    this.compactTerm = meta.term;
  }

  async append(entries: Entry[]): Promise<void> {
    this.appendSync(entries);
  }
  async setHardState(hs: HardState): Promise<void> {
    this.hardState = { ...hs };
  }
  async setSnapshot(meta: SnapshotMeta): Promise<void> {
    this.snapshot = structuredClone(meta);
  }
  async compact(index: number): Promise<void> {
    this.compactSync(index);
  }
  async installSnapshot(meta: SnapshotMeta): Promise<void> {
    this.installSnapshotSync(meta);
  }
}
