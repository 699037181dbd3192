// The network between the nemesis servers: one LinkProxy per server and the table of per-direction
// rules they consult, with the partition shapes the nemesis uses.
import { LinkProxy, type LinkRule } from "./link_proxy.ts";
import type { SeededRandom } from "./seeded_random.ts";

const OPEN: LinkRule = { blocked: false, delayMs: 0, jitterMs: 0, resetChance: 0 };

export class Network {
  readonly proxies: LinkProxy[] = [];
  private readonly rules: LinkRule[][];

  constructor(
    readonly size: number,
    private readonly rng: SeededRandom,
  ) {
    this.rules = Array.from({ length: size }, () => Array.from({ length: size }, () => ({ ...OPEN })));
  }

  rule(from: number, to: number): LinkRule {
    return this.rules[from]?.[to] ?? OPEN;
  }

  addProxy(to: number, listenPort: number, targetPort: number, pids: () => readonly (number | undefined)[]): LinkProxy {
    const p = new LinkProxy(to, listenPort, targetPort, pids, { rule: (a, b) => this.rule(a, b), random: () => this.rng.next() });
    this.proxies.push(p);
    return p;
  }

  /** Discard bytes from `from` to `to`; with both directions cut, connections are reset and refused. */
  cut(from: number, to: number): void {
    this.rules[from]![to]!.blocked = true;
    if (this.rule(to, from).blocked) {
      this.proxies[to]?.reset((c) => c.from === from);
      this.proxies[from]?.reset((c) => c.from === to);
    }
  }

  /** Cut every link between the two groups, both ways. */
  partition(a: readonly number[], b: readonly number[]): void {
    for (const x of a)
      for (const y of b) {
        this.cut(x, y);
        this.cut(y, x);
      }
  }

  /** Delay every link by `ms` plus up to `jitterMs`. */
  slow(ms: number, jitterMs: number): void {
    for (const row of this.rules)
      for (const r of row) {
        r.delayMs = ms;
        r.jitterMs = jitterMs;
      }
  }

  /** Reset connections on every link with probability `p` per chunk. */
  flaky(p: number): void {
    for (const row of this.rules) for (const r of row) r.resetChance = p;
  }

  /** Everything open again; connections whose bytes were discarded are reset (their streams are torn). */
  heal(): void {
    for (const row of this.rules) for (const r of row) Object.assign(r, OPEN);
    for (const p of this.proxies) p.reset((c) => c.torn);
  }

  describe(): string {
    const cuts: string[] = [];
    for (let a = 0; a < this.size; a++) for (let b = 0; b < this.size; b++) if (this.rule(a, b).blocked) cuts.push(`${a}->${b}`);
    return cuts.length ? `cut ${cuts.join(" ")}` : "open";
  }

  async stop(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.stop()));
  }
}
