// The in-memory index of the live log: for each index from `first` on, its term and where its
// entry frame sits (segment id, byte offset, data length). 20 bytes per entry, in typed arrays.
import { assert } from "../lib/assert.ts";

export class OffsetIndex {
  private terms = new Float64Array(1024);
  private segs = new Uint32Array(1024);
  private offs = new Uint32Array(1024);
  private lens = new Uint32Array(1024);
  /** Array slot of `first`. */
  private start = 0;
  private count = 0;

  /** first is the log index held at position 0 (compacted index + 1). */
  constructor(private firstIdx: number) {}

  get first(): number {
    return this.firstIdx;
  }
  /** first - 1 when empty. */
  get last(): number {
    return this.firstIdx + this.count - 1;
  }
  get length(): number {
    return this.count;
  }

  private slot(index: number): number {
    assert(index >= this.firstIdx && index <= this.last, () => `index ${index} outside ${this.firstIdx}..${this.last}`);
    return this.start + index - this.firstIdx;
  }
  term(index: number): number {
    return this.terms[this.slot(index)] as number;
  }
  segment(index: number): number {
    return this.segs[this.slot(index)] as number;
  }
  offset(index: number): number {
    return this.offs[this.slot(index)] as number;
  }
  dataLen(index: number): number {
    return this.lens[this.slot(index)] as number;
  }

  push(index: number, term: number, seg: number, off: number, len: number): void {
    if (index !== this.last + 1) assert(false, `index ${index} pushed after ${this.last}`);
    if (this.start + this.count === this.terms.length) this.grow();
    const s = this.start + this.count;
    this.terms[s] = term;
    this.segs[s] = seg;
    this.offs[s] = off;
    this.lens[s] = len;
    this.count++;
  }

  /** Keep entries <= last (last may be first - 1: empty). */
  truncateAfter(last: number): void {
    assert(last >= this.firstIdx - 1, () => `truncate to ${last} below first ${this.firstIdx}`);
    if (last < this.last) this.count = last - this.firstIdx + 1;
  }

  /** Drop entries <= index; first becomes index + 1 (index may pass last: then empty). */
  dropThrough(index: number): void {
    if (index < this.firstIdx) return;
    const n = Math.min(index - this.firstIdx + 1, this.count);
    this.start += n;
    this.count -= n;
    this.firstIdx = index + 1;
    if (this.count === 0) this.start = 0;
  }

  private grow(): void {
    // Reclaim the dropped prefix first; double only when more than half is live.
    const cap = this.count * 2 > this.terms.length ? this.terms.length * 2 : this.terms.length;
    const move = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a.subarray(this.start, this.start + this.count));
      return b;
    };
    this.terms = move(this.terms, (n) => new Float64Array(n));
    this.segs = move(this.segs, (n) => new Uint32Array(n));
    this.offs = move(this.offs, (n) => new Uint32Array(n));
    this.lens = move(this.lens, (n) => new Uint32Array(n));
    this.start = 0;
  }
}
