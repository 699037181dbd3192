// Linearizable reads on the leader (raft thesis §6.4, ReadIndex): concurrent reads share one round
// in which the leader confirms it still leads, then each waits until this server has applied the
// commit index the round returned. A request or its answer can be lost (it travels as a raft message),
// so a round unanswered for READ_RETRY_MS is asked again under a new context; each read is bounded
// by READ_TIMEOUT_MS as a whole.
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { ReadState } from "../raft/raw_node.ts";

const MAX_PENDING_READS = 16_384;
const READ_TIMEOUT_MS = 10_000;
/**
 * A read index request unanswered this long is asked again under a new context (etcd's server retries
 * after 500 ms too). The request or its answer travels as a fire-and-forget raft message, so it is lost
 * with a reset connection, or with a leader that stepped down: without the retry, one lost answer left
 * every later read on that server waiting behind it for good. Asking again is
 * safe: a context issued after a read arrived can only be answered with an index confirmed after it.
 */
export const READ_RETRY_MS = 500;

interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (e: unknown) => void;
  /** Settled (answered or timed out): dropped rather than asked again. */
  done: boolean;
}

interface ReadAsk {
  waiters: ReadWaiter[];
  /** performance.now() when the read index was requested under this context. */
  at: number;
}

/** What read barriers need from the raft driver. */
export interface ReadBarrierHost {
  readonly logger: Logger;
  /** Asks the core for a read index under `ctx` (throws NotLeaderError with no leader known). */
  readIndex(ctx: string): void;
  /** Runs the Ready loop (the request goes out). */
  kick(): void;
  stopped(): boolean;
  waitApplied(index: number, timeoutMs: number, what: string): Promise<void>;
}

export class ReadBarriers {
  private batch: ReadWaiter[] = [];
  private inFlight = new Map<string, ReadAsk>();
  private seq = 0;

  constructor(private readonly host: ReadBarrierHost) {}

  /**
   * A linearizable read barrier: the leader confirms it still leads (a quorum round) and returns
   * once its state has applied the commit index it had when the read arrived. Concurrent reads share
   * one round; a read never joins a round issued before it arrived. Both steps together are bounded
   * by READ_TIMEOUT_MS.
   */
  barrier(): Promise<number> {
    if (this.host.stopped()) return Promise.reject(new EdgeError("UNAVAILABLE", "server is shutting down"));
    const deadline = performance.now() + READ_TIMEOUT_MS;
    if (this.batch.length >= MAX_PENDING_READS) return Promise.reject(new EdgeError("UNAVAILABLE", "too many reads in flight; retry"));
    const w: ReadWaiter = { done: false, resolve: () => {}, reject: () => {} };
    const confirmed = new Promise<number>((resolve, reject) => {
      w.resolve = resolve;
      w.reject = reject;
    });
    this.batch.push(w);
    if (this.inFlight.size === 0) this.issue();
    return withDeadline(confirmed, READ_TIMEOUT_MS, "timed out confirming leadership for a consistent read")
      .finally(() => {
        w.done = true;
      })
      .then(async (index) => {
        const left = Math.max(1, Math.ceil(deadline - performance.now()));
        await this.host.waitApplied(index, left, `timed out applying index ${index} on this server for a consistent read`);
        return index;
      });
  }

  get waiting(): boolean {
    return this.inFlight.size > 0;
  }

  /** Asks for the reads that arrived since the last request, if none is in flight. */
  issueIfIdle(): void {
    if (this.inFlight.size === 0) this.issue();
  }

  private issue(): void {
    if (this.batch.length === 0) return;
    const ctx = `r${++this.seq}`;
    const waiters = this.batch;
    this.batch = [];
    try {
      this.host.readIndex(ctx);
    } catch (e) {
      // No leader known (NotLeaderError): these reads fail now, as a read arriving then would.
      for (const w of waiters) w.reject(e);
      return;
    }
    this.inFlight.set(ctx, { waiters, at: performance.now() });
    this.host.kick();
  }

  /**
   * Ask again for reads whose request is older than READ_RETRY_MS (all of them when `all`). Bounded:
   * each read gives up at its deadline, and a settled read is not asked again.
   */
  retry(now: number, all = false): void {
    let again: ReadWaiter[] | undefined;
    for (const [ctx, ask] of this.inFlight) {
      if (!all && now - ask.at < READ_RETRY_MS) continue;
      this.inFlight.delete(ctx);
      again ??= [];
      for (const w of ask.waiters) if (!w.done) again.push(w);
    }
    if (!again) return;
    if (again.length > 0) this.host.logger.debug("read index unanswered; asking again", { reads: again.length, all });
    const waiting = this.batch.filter((w) => !w.done);
    this.batch = again.length > 0 ? again.concat(waiting) : waiting;
    if (this.inFlight.size === 0) this.issue();
  }

  /** The core's answers: each read of an answered context may proceed to wait for its index. */
  served(states: readonly ReadState[]): void {
    for (const rs of states) {
      const ask = this.inFlight.get(rs.ctx);
      if (!ask) continue; // answered after it was asked again: the newer context stands for it
      this.inFlight.delete(rs.ctx);
      for (const w of ask.waiters) if (!w.done) w.resolve(rs.index);
    }
    if (this.inFlight.size === 0) this.issue();
  }

  fail(e: unknown): void {
    for (const ask of this.inFlight.values()) for (const w of ask.waiters) w.reject(e);
    this.inFlight.clear();
    for (const w of this.batch) w.reject(e);
    this.batch = [];
  }
}
