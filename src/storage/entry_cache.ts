// A bounded cache of the most recent log entries, so followers being replicated to are served
// from memory. Holds a contiguous run ending at the log's last index; evicts from the front.
import { assert } from "../lib/assert.ts";
import type { Entry } from "../raft/storage.ts";
import { entrySize } from "../raft/storage.ts";

export class EntryCache {
  private items: Entry[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  private get firstIndex(): number {
    return this.items.length > this.head ? (this.items[this.head] as Entry).index : -1;
  }

  get(index: number): Entry | undefined {
    const first = this.firstIndex;
    if (first < 0 || index < first) return undefined;
    return this.items[this.head + index - first];
  }

  /** Entries must continue the cached run (or replace its suffix from their first index). */
  add(entries: readonly Entry[]): void {
    if (entries.length === 0 || this.maxBytes === 0) return;
    const first = (entries[0] as Entry).index;
    const cFirst = this.firstIndex;
    const cLast = cFirst < 0 ? -1 : cFirst + this.items.length - this.head - 1;
    if (cFirst < 0 || first < cFirst || first > cLast + 1) this.clear();
    else this.truncateAfter(first - 1);
    for (const e of entries) {
      this.items.push(e);
      this.bytes += entrySize(e);
    }
    while (this.bytes > this.maxBytes && this.items.length - this.head > 1) this.shift();
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  truncateAfter(last: number): void {
    const first = this.firstIndex;
    if (first < 0) return;
    if (last < first) return this.clear();
    while (this.items.length - this.head > last - first + 1) {
      const e = this.items.pop() as Entry;
      this.bytes -= entrySize(e);
    }
  }

  dropThrough(index: number): void {
    while (this.items.length > this.head && (this.items[this.head] as Entry).index <= index) this.shift();
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  private shift(): void {
    const e = this.items[this.head];
    assert(e !== undefined, "shift of empty cache");
    this.items[this.head] = undefined as unknown as Entry;
    this.head++;
    this.bytes -= entrySize(e);
  }
}
