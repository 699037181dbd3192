// Safety checks the simulation runs after every step: election safety, log
// matching, agreement on committed entries, leader completeness, state-machine
// safety (every applied sequence is a prefix of one sequence), commit monotonic,
// acknowledged writes never lost, and reads consistent with a linearization.
import type { Entry } from "../../src/raft/storage.ts";

/** FNV-1a over an entry's identity (term, type, payload). */
export function entrySig(e: Entry): number {
  let h = 0x811c9dc5;
  const mix = (b: number) => {
    h ^= b & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (let t = e.term; t > 0; t = Math.floor(t / 256)) mix(t);
  mix(e.type + 7);
  for (const b of e.data) mix(b);
  return h >>> 0;
}

export function chainHash(prev: number, sig: number): number {
  return (Math.imul(prev ^ sig, 0x9e3779b1) + 0x7f4a7c15) >>> 0;
}

export class Checker {
  readonly violations: string[] = [];
  /** term -> leader */
  private leaders = new Map<number, string>();
  /** "index:term" -> (prevTerm, sig) of every entry ever persisted anywhere */
  private persisted = new Map<string, { prevTerm: number; sig: number }>();
  /** index -> term of entries known committed (from any server's persisted commit) */
  readonly committedTerm = new Map<number, number>();
  maxCommitted = 0;
  /** index -> (sig, state hash after applying it) of the one applied sequence */
  private applied = new Map<number, { sig: number; hash: number }>();
  maxAckedIndex = 0;
  /** Largest applied index any completed read observed. */
  maxReadSeen = 0;
  acked = 0;
  reads = 0;

  constructor(private readonly now: () => number) {}

  fail(what: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.now()} ${what}`);
  }

  leader(term: number, id: string): void {
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id) this.fail(`election safety: ${prev} and ${id} both leader in term ${term}`);
    this.leaders.set(term, id);
  }

  persist(id: string, e: Entry, prevTerm: number): void {
    const key = `${e.index}:${e.term}`;
    const sig = entrySig(e);
    const prev = this.persisted.get(key);
    if (prev === undefined) this.persisted.set(key, { prevTerm, sig });
    else if (prev.prevTerm !== prevTerm || prev.sig !== sig) {
      this.fail(
        `log matching: ${id} holds entry ${key} with prevTerm ${prevTerm}, elsewhere prevTerm ${prev.prevTerm} (sig ${sig} vs ${prev.sig})`,
      );
    }
  }

  /** index -> the lowest term any server was in when it learned the entry committed */
  private committedBy = new Map<number, number>();

  committed(id: string, index: number, term: number, serverTerm: number): void {
    const t = this.committedTerm.get(index);
    if (t === undefined) this.committedTerm.set(index, term);
    else if (t !== term) this.fail(`commit agreement: ${id} committed index ${index} at term ${term}, another server at term ${t}`);
    const by = this.committedBy.get(index);
    if (by === undefined || serverTerm < by) this.committedBy.set(index, serverTerm);
    if (index > this.maxCommitted) this.maxCommitted = index;
  }

  /**
   * A new leader's log must hold every entry committed in an earlier term (those it has not compacted).
   * The leader's Ready may be handled late (a paused driver), so entries committed in its term or later
   * are not its concern.
   */
  leaderCompleteness(id: string, term: number, first: number, last: number, termAt: (i: number) => number): void {
    for (let i = Math.max(1, first); i <= this.maxCommitted; i++) {
      const ct = this.committedTerm.get(i);
      if (ct === undefined || (this.committedBy.get(i) ?? 0) >= term) continue;
      if (i > last) {
        this.fail(`leader completeness: leader ${id} of term ${term} lacks committed entry ${i} (last ${last})`);
        return;
      }
      if (termAt(i) !== ct) {
        this.fail(`leader completeness: leader ${id} of term ${term} has term ${termAt(i)} at committed ${i}, committed term ${ct}`);
        return;
      }
    }
  }

  /**
   * Potential leaders hold every committed entry (TLA+ MoreUpToDateCorrectInv): a server whose log is at
   * least as up-to-date as a quorum's could win an election, so it must already contain the newest
   * committed entry. Catches a bad commit before an election has to exploit it.
   */
  electable(logs: { id: string; lastIndex: number; lastTerm: number; has: (index: number, term: number) => boolean }[]): void {
    const c = this.maxCommitted;
    const ct = this.committedTerm.get(c);
    if (c === 0 || ct === undefined) return;
    const q = Math.floor(logs.length / 2) + 1;
    for (const a of logs) {
      let dominated = 0;
      for (const b of logs) if (a.lastTerm > b.lastTerm || (a.lastTerm === b.lastTerm && a.lastIndex >= b.lastIndex)) dominated++;
      if (dominated >= q && !a.has(c, ct)) {
        this.fail(`leader completeness: ${a.id} (last ${a.lastIndex}@${a.lastTerm}) could be elected but lacks committed entry ${c}@${ct}`);
        return;
      }
    }
  }

  /** Server `id` applied entry `index` with `sig`, reaching state `hash`. */
  apply(id: string, index: number, sig: number, hash: number): void {
    const a = this.applied.get(index);
    if (a === undefined) this.applied.set(index, { sig, hash });
    else if (a.sig !== sig || a.hash !== hash) this.fail(`state machine safety: ${id} applied a different entry or state at ${index}`);
  }

  /** Server `id` installed a snapshot at `index` with state `hash`. */
  snapshot(id: string, index: number, hash: number): void {
    const a = this.applied.get(index);
    if (a !== undefined && a.hash !== hash) this.fail(`state machine safety: ${id} installed snapshot ${index} with a different state`);
  }

  ack(index: number): void {
    this.acked++;
    if (index > this.maxAckedIndex) this.maxAckedIndex = index;
  }

  /** Lower bound a read invoked now must observe. */
  readFloor(): number {
    return Math.max(this.maxAckedIndex, this.maxReadSeen);
  }

  /** A read invoked with `floor` returned read index `index` and was served at applied index `servedAt`. */
  readDone(id: string, ctx: string, floor: number, index: number, servedAt: number): void {
    this.reads++;
    if (index < floor)
      this.fail(`linearizability: read ${ctx} on ${id} got index ${index} below ${floor} (acknowledged or already observed)`);
    if (servedAt > this.maxReadSeen) this.maxReadSeen = servedAt;
  }
}
