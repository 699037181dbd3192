// A small seeded PRNG (mulberry32) so every randomized choice of the checker tests and the nemesis
// can be replayed from its seed.
import { mulberry32 } from "../support/mulberry32.ts";

export class SeededRandom {
  private readonly gen: () => number;

  constructor(readonly seed: number) {
    this.gen = mulberry32(seed >>> 0 || 0x9e3779b9);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.gen();
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error("pick from an empty list");
    return xs[this.int(0, xs.length)]!;
  }
}
