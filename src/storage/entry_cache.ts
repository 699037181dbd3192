// A bounded cache of the most recent log entries, so followers being replicated to are served
// from memory. Holds a contiguous run ending at the log's last index; evicts from the front.
//
// A ring of slots with the size of each entry kept beside it: an append adds and evicts without
// moving anything or reading an entry twice, where an array's push/shift/slice moves and copies
// (test/bench/RESULTS.md, storage). The slots live in chunks of CHUNK so no single array grows with
// the cache.
// It is bounded by entry count as well as bytes: every cached entry is an object the collector
// keeps marking, and 16 MiB of small entries is 100k of them (hashicorp/raft's LogCache holds 512).
import { assert } from "../lib/assert.ts";
import type { Entry } from "../raft/storage.ts";
import { entrySize } from "../raft/storage.ts";

const CHUNK_BITS = 10;
const CHUNK = 1 << CHUNK_BITS;
const INITIAL_SLOTS = CHUNK;

const newChunk = () => new Array<Entry | undefined>(CHUNK).fill(undefined);

export class EntryCache {
  private chunks: (Entry | undefined)[][] = [newChunk()];
  private sizes = new Float64Array(INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  /** Slot of the oldest cached entry. */
  private head = 0;
  private count = 0;
  /** Log index of the oldest cached entry (meaningless when count is 0). */
  private first = 0;
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly maxEntries = Number.MAX_SAFE_INTEGER,
  ) {
    assert(Number.isSafeInteger(maxBytes) && maxBytes >= 0, "cache maxBytes must be >= 0");
    assert(Number.isSafeInteger(maxEntries) && maxEntries >= 1, "cache maxEntries must be >= 1");
  }

  get(index: number): Entry | undefined {
    const k = index - this.first;
    if (k < 0 || k >= this.count) return undefined;
    const s = (this.head + k) & this.mask;
    return (this.chunks[s >> CHUNK_BITS] as (Entry | undefined)[])[s & (CHUNK - 1)];
  }

  /** Entries must continue the cached run (or replace its suffix from their first index). */
  add(entries: readonly Entry[]): void {
    if (entries.length === 0 || this.maxBytes === 0) return;
    const first = (entries[0] as Entry).index;
    if (this.count === 0 || first < this.first || first > this.first + this.count) {
      this.clear();
      this.first = first;
    } else {
      this.truncateAfter(first - 1);
    }
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      assert(e.index === this.first + this.count, () => `cache add of ${e.index} after ${this.first + this.count - 1}`);
      if (this.count === this.sizes.length) this.grow();
      const s = (this.head + this.count) & this.mask;
      const size = entrySize(e);
      this.set(s, e);
      this.sizes[s] = size;
      this.count++;
      this.bytes += size;
      while ((this.bytes > this.maxBytes || this.count > this.maxEntries) && this.count > 1) this.shift();
    }
  }

  truncateAfter(last: number): void {
    if (this.count === 0) return;
    if (last < this.first) return this.clear();
    while (this.count > last - this.first + 1) {
      const s = (this.head + this.count - 1) & this.mask;
      this.bytes -= this.sizes[s] as number;
      this.set(s, undefined);
      this.count--;
    }
  }

  dropThrough(index: number): void {
    while (this.count > 0 && this.first <= index) this.shift();
  }

  clear(): void {
    if (this.count > 0) for (const c of this.chunks) c.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
  }

  private shift(): void {
    assert(this.count > 0, "shift of empty cache");
    const s = this.head;
    this.bytes -= this.sizes[s] as number;
    this.set(s, undefined);
    this.head = (s + 1) & this.mask;
    this.count--;
    this.first++;
  }

  private set(slot: number, e: Entry | undefined): void {
    (this.chunks[slot >> CHUNK_BITS] as (Entry | undefined)[])[slot & (CHUNK - 1)] = e;
  }

  private grow(): void {
    const n = this.sizes.length * 2;
    const chunks = Array.from({ length: Math.max(1, n >> CHUNK_BITS) }, newChunk);
    const sizes = new Float64Array(n);
    for (let k = 0; k < this.count; k++) {
      const s = (this.head + k) & this.mask;
      (chunks[k >> CHUNK_BITS] as (Entry | undefined)[])[k & (CHUNK - 1)] = this.get(this.first + k);
      sizes[k] = this.sizes[s] as number;
    }
    this.chunks = chunks;
    this.sizes = sizes;
    this.mask = n - 1;
    this.head = 0;
  }
}
