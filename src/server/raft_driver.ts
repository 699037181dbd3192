// Drives the pure raft core: deadline-scheduled ticks, the Ready loop (persist,
// then send, then hand committed entries to the applier, then advance), the
// applier (the state machine applies in order, apart from the loop), group
// commit, proposals waiting for their index to apply, batched ReadIndex
// barriers, and snapshot sends.
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Message } from "../raft/message.ts";
import type { RawNode, Ready } from "../raft/raw_node.ts";
import { EntryType, type Entry, type HardState, type LogStorage, type SnapshotMeta } from "../raft/storage.ts";
import type { Logger } from "../lib/logger.ts";
import type { Metrics } from "./metrics.ts";

/** What the driver needs from the rest of the server. */
export interface DriverHooks {
  /** Send one message to a peer (fire and forget; raft tolerates loss). */
  send(m: Message): void;
  /** Stream the current snapshot to m.to; resolve true on success. */
  sendSnapshot(m: Message): Promise<boolean>;
  /** Apply one committed Normal entry with data; returns the command's result. */
  apply(e: Entry): unknown | Promise<unknown>;
  /** Apply a committed configuration change (after the core has). */
  applyConfChange(e: Entry): void;
  /** Replace the state machine with the snapshot received from the leader (already in the snapshot store). */
  installSnapshot(meta: SnapshotMeta): Promise<void>;
  /** Called after each batch of applied entries; may take an automatic snapshot. */
  afterApply(applied: number): void;
  /** Leadership changed (softState). */
  onLeaderChange(lead: string, isLeader: boolean, term: number): void;
  /** A fatal error (disk): the server must stop. */
  fatal(e: unknown): void;
}

interface Pending {
  term: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

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

export const MAX_PENDING_PROPOSALS = 16_384;
export const MAX_PENDING_READS = 16_384;
const PROPOSAL_TIMEOUT_MS = 30_000;
const READ_TIMEOUT_MS = 10_000;
/**
 * A read index request unanswered this long is asked again under a new context (etcd's server retries
 * after 500 ms too). The request or its answer travels as a fire-and-forget raft message, so it is lost
 * with a reset connection, or with a leader that stepped down: without the retry, one lost answer left
 * every later read on that server waiting behind it for good (the nemesis found it). Asking again is
 * safe: a context issued after a read arrived can only be answered with an index confirmed after it.
 */
export const READ_RETRY_MS = 500;
/** How long a commit-only hard state may wait before it is written (it is volatile state in raft). */
const COMMIT_PERSIST_INTERVAL_MS = 50;
/**
 * Committed entries waiting for the applier, at most this many (and APPLY_QUEUE_BYTES of data): past it
 * the Ready loop waits for the applier to catch up, as it did when it applied inline.
 */
export const APPLY_QUEUE_ENTRIES = 65_536;
export const APPLY_QUEUE_BYTES = 64 * 1024 * 1024;
/** The applier wakes index waiters and offers a snapshot at least every this many entries. */
const APPLY_WAKE_EVERY = 256;

export class RaftDriver {
  private running = false;
  private scheduled = false;
  private stopped = false;
  private tickTimer: ReturnType<typeof setTimeout> | undefined;
  private nextTickAt = 0;
  private pending = new Map<number, Pending>();
  private appliedWaiters: { index: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private readBatch: ReadWaiter[] = [];
  private readInFlight = new Map<string, ReadAsk>();
  private readSeq = 0;
  private _applied: number;
  private _lead = "";
  private _isLeader = false;
  private _term = 0;
  /** The vote in the last persisted hard state (NaN-like sentinel until the first one). */
  private persistedVote: string | undefined;
  /**
   * Committed entries the state machine has yet to apply, in order. The applier works through them
   * apart from the Ready loop, so an apply that takes long (a restore's swap waiting for its state to be
   * built, or fetching its staged file) does not stop this server persisting, acknowledging and voting.
   */
  private applyQueue: Entry[] = [];
  private applyQueueHead = 0;
  private applyQueueBytes = 0;
  private applier: Promise<void> | undefined;
  private applierRunning = false;
  lastContact = 0;

  constructor(
    readonly node: RawNode,
    private readonly log: LogStorage,
    private readonly hooks: DriverHooks,
    private readonly tickMs: number,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    applied: number,
  ) {
    this._applied = applied;
  }

  get applied(): number {
    return this._applied;
  }
  get leader(): string {
    return this._lead;
  }
  get isLeader(): boolean {
    return this._isLeader;
  }
  get term(): number {
    return this._term;
  }

  start(): void {
    this.nextTickAt = performance.now() + this.tickMs;
    this.armTick();
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    const err = new EdgeError("UNAVAILABLE", "server is shutting down");
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.failReads(err);
    for (const w of this.appliedWaiters.splice(0)) w.reject(err);
  }

  // Ticks are scheduled from deadlines so timer drift does not accumulate.
  private armTick(): void {
    if (this.stopped) return;
    const delay = Math.max(0, this.nextTickAt - performance.now());
    this.tickTimer = setTimeout(() => {
      if (this.stopped) return;
      const now = performance.now();
      // Catch up at most a few ticks after a stall (a long GC or a blocked loop) rather than a burst.
      let n = 0;
      while (this.nextTickAt <= now && n < 3) {
        this.node.tick();
        this.nextTickAt += this.tickMs;
        n++;
      }
      if (this.nextTickAt <= now) this.nextTickAt = now + this.tickMs;
      this.retryReads(now);
      this.kick();
      this.armTick();
    }, delay);
  }

  /** A message from a peer. */
  step(m: Message): void {
    if (this.stopped) return;
    if (m.from === this._lead && (m.type === "app" || m.type === "heartbeat" || m.type === "snap")) this.lastContact = performance.now();
    this.node.step(m);
    this.kick();
  }

  /** Propose a command; resolves with its apply result once committed and applied here. */
  propose(data: Uint8Array, timeoutMs = PROPOSAL_TIMEOUT_MS): Promise<unknown> {
    if (this.stopped) return Promise.reject(new EdgeError("UNAVAILABLE", "server is shutting down"));
    if (this.pending.size >= MAX_PENDING_PROPOSALS)
      return Promise.reject(new EdgeError("UNAVAILABLE", "too many proposals in flight; retry"));
    const { index, term } = this.node.propose(data);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.get(index)?.timer === timer) this.pending.delete(index);
        reject(new EdgeError("TIMEOUT", `timed out waiting for index ${index} to commit; the outcome is unknown`));
      }, timeoutMs);
      this.pending.set(index, { term, resolve, reject, timer });
      this.kick();
    });
  }

  /**
   * Resolves once this server has applied at least `index`. With `timeoutMs`, rejects with TIMEOUT
   * (`what`) after it and forgets the waiter, so callers that give up leave nothing behind. Rejects
   * with UNAVAILABLE when the driver stops first.
   */
  waitApplied(index: number, timeoutMs?: number, what = `timed out waiting for index ${index} to apply`): Promise<void> {
    if (this._applied >= index) return Promise.resolve();
    if (this.stopped) return Promise.reject(new EdgeError("UNAVAILABLE", "server is shutting down"));
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w = {
        index,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const at = this.appliedWaiters.indexOf(w);
          if (at >= 0) this.appliedWaiters.splice(at, 1);
          reject(new EdgeError("TIMEOUT", what));
        }, timeoutMs);
      }
      this.appliedWaiters.push(w);
    });
  }

  /**
   * A linearizable read barrier: the leader confirms it still leads (a quorum round) and returns
   * once its state has applied the commit index it had when the read arrived. Concurrent reads share
   * one round; a read never joins a round issued before it arrived. Both steps together are bounded
   * by READ_TIMEOUT_MS.
   */
  readBarrier(): Promise<number> {
    if (this.stopped) return Promise.reject(new EdgeError("UNAVAILABLE", "server is shutting down"));
    const deadline = performance.now() + READ_TIMEOUT_MS;
    if (this.readBatch.length >= MAX_PENDING_READS) return Promise.reject(new EdgeError("UNAVAILABLE", "too many reads in flight; retry"));
    return new Promise<number>((resolve, reject) => {
      const w: ReadWaiter = {
        done: false,
        resolve: (i) => {
          w.done = true;
          clearTimeout(timer);
          resolve(i);
        },
        reject: (e) => {
          w.done = true;
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(
        () => w.reject(new EdgeError("TIMEOUT", "timed out confirming leadership for a consistent read")),
        READ_TIMEOUT_MS,
      );
      this.readBatch.push(w);
      if (this.readInFlight.size === 0) this.issueReads();
    }).then(async (index) => {
      const left = Math.max(1, Math.ceil(deadline - performance.now()));
      await this.waitApplied(index, left, `timed out applying index ${index} on this server for a consistent read`);
      return index;
    });
  }

  private issueReads(): void {
    if (this.readBatch.length === 0) return;
    const ctx = `r${++this.readSeq}`;
    const waiters = this.readBatch;
    this.readBatch = [];
    try {
      this.node.readIndex(ctx);
    } catch (e) {
      // No leader known (NotLeaderError): these reads fail now, as a read arriving then would.
      for (const w of waiters) w.reject(e);
      return;
    }
    this.readInFlight.set(ctx, { waiters, at: performance.now() });
    this.kick();
  }

  /** Ask again for reads whose request is older than READ_RETRY_MS (all of them when `all`). */
  private retryReads(now: number, all = false): void {
    let again: ReadWaiter[] | undefined;
    for (const [ctx, ask] of this.readInFlight) {
      if (!all && now - ask.at < READ_RETRY_MS) continue;
      this.readInFlight.delete(ctx);
      again ??= [];
      for (const w of ask.waiters) if (!w.done) again.push(w);
    }
    if (!again) return;
    const waiting = this.readBatch.filter((w) => !w.done);
    this.readBatch = again.length > 0 ? again.concat(waiting) : waiting;
    if (this.readInFlight.size === 0) this.issueReads();
  }

  kick(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      while (!this.stopped && this.node.hasReady()) {
        const rd = this.node.ready();
        await this.handleReady(rd);
        this.node.advance(rd);
      }
    } catch (e) {
      this.hooks.fatal(e);
    } finally {
      this.running = false;
    }
    // Work that arrived while the last batch was persisting.
    if (!this.stopped && this.node.hasReady()) this.kick();
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) {
      const wasLeader = this._isLeader;
      const prevLead = this._lead;
      this._lead = rd.softState.lead;
      this._isLeader = rd.softState.state === "leader";
      this.hooks.onLeaderChange(this._lead, this._isLeader, this.node.status().term);
      if (wasLeader && !this._isLeader) this.failReads(new EdgeError("NO_LEADER", "leadership lost while confirming a read; retry"));
      // A follower's reads went to the old leader, whose answer may never come: ask the new one.
      else if (!this._isLeader && this._lead !== prevLead && this._lead !== "" && this.readInFlight.size > 0)
        this.retryReads(performance.now(), true);
    }
    const prevTerm = this._term;
    if (rd.hardState) this._term = rd.hardState.term;
    // A leader's appends go out while its own copy is being written (raft thesis §10.2.1; etcd's Ready
    // contract): they depend only on entries of earlier, already durable batches and on a term that
    // was persisted before the votes that won it. Whatever they make committed is only acted on in
    // the next Ready, after this batch's fsync. One fewer fsync on the write path.
    const early = rd.entries.length > 0 && !rd.snapshot && (!rd.hardState || rd.hardState.term === prevTerm);
    if (early) for (const m of rd.messages) if (m.type === "app") this.hooks.send(m);
    // 1. Persist: a snapshot from the leader, then entries, then the hard state. One fsync each batch.
    if (rd.snapshot) {
      // The entries committed before it apply first: the state machine sees one order of changes.
      await this.applierIdle();
      if (this.stopped) return;
      await this.hooks.installSnapshot(rd.snapshot);
      await this.log.installSnapshot(rd.snapshot);
      this._applied = Math.max(this._applied, rd.snapshot.index);
      // Reads waiting for an index the snapshot covers are served now, not at the next applied entry
      // (on an idle cluster there may be none).
      this.wakeApplied();
    }
    if (rd.entries.length > 0) {
      const t0 = performance.now();
      await this.log.append(rd.entries);
      this.metrics.observe("edgenode_raft_fsync_ms", performance.now() - t0, {}, "WAL append+fsync latency (ms)");
    }
    // A hard state that only moves the commit index waits until after apply: commit is volatile in
    // raft (recovered from the leader), so acknowledging a quorum-durable write need not wait for a
    // third fsync. Term and vote changes are persisted before anything is sent, as before.
    const commitOnly = rd.hardState !== undefined && rd.hardState.term === prevTerm && rd.hardState.vote === this.persistedVote;
    if (rd.hardState && !commitOnly) {
      // It carries the newest commit too; an older commit-only write still waiting must not follow it.
      this.commitPending = undefined;
      await this.log.setHardState(rd.hardState);
    }
    if (rd.hardState) this.persistedVote = rd.hardState.vote;
    // 2. Send what depended on it.
    for (const m of rd.messages) {
      if (m.type === "snap") {
        void this.hooks.sendSnapshot(m).then(
          (ok) => {
            this.node.reportSnapshot(m.to, ok);
            this.kick();
          },
          () => {
            this.node.reportSnapshot(m.to, false);
            this.kick();
          },
        );
      } else if (!(early && m.type === "app")) {
        this.hooks.send(m);
      }
    }
    // 3. Apply: the applier takes the committed entries in order; the loop waits only when too many wait.
    if (rd.committedEntries.length > 0) this.enqueueApply(rd.committedEntries);
    if (rd.hardState && commitOnly) this.persistCommitLater(rd.hardState);
    if (this.applyQueue.length - this.applyQueueHead > APPLY_QUEUE_ENTRIES || this.applyQueueBytes > APPLY_QUEUE_BYTES)
      await this.applierIdle();
    // 4. Serve read states.
    for (const rs of rd.readStates) {
      const ask = this.readInFlight.get(rs.ctx);
      if (!ask) continue; // answered after it was asked again: the newer context stands for it
      this.readInFlight.delete(rs.ctx);
      for (const w of ask.waiters) if (!w.done) w.resolve(rs.index);
    }
    if (this.readInFlight.size === 0) this.issueReads();
  }

  /** True while the background commit writer runs; it clears this itself (see enqueueApply for why). */
  private commitWriting = false;
  private commitPending: HardState | undefined;

  /**
   * Commit-only hard states are written in the background, coalesced (one write in flight, then the
   * newest): the commit index is volatile in raft, so no acknowledgement waits for it. A failed write
   * is still fatal.
   */
  private persistCommitLater(hs: HardState): void {
    this.commitPending = hs;
    if (this.commitWriting) return;
    this.commitWriting = true;
    const loop = async () => {
      try {
        // Spaced out so the commit record's fsync does not contend with every WAL append's fsync.
        await Bun.sleep(COMMIT_PERSIST_INTERVAL_MS);
        while (this.commitPending && !this.stopped) {
          const next = this.commitPending;
          this.commitPending = undefined;
          await this.log.setHardState(next);
        }
      } finally {
        // No await between the loop's last look at commitPending and here.
        this.commitWriting = false;
      }
    };
    loop().catch((e: unknown) => {
      // A write cut short by shutdown closing the store is not a disk failure.
      if (!this.stopped) this.hooks.fatal(e);
    });
  }

  private enqueueApply(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.applyQueue.push(e);
      this.applyQueueBytes += e.data.byteLength;
    }
    if (this.applierRunning) return;
    // Whether an applier runs is a flag the applier clears itself, in the same synchronous step as its
    // last look at the queue. Clearing it in a continuation of its promise left a window of a few
    // microtasks in which entries handed over here were seen as taken and never applied (a follower
    // restarted after a restore stalled one entry short of its commit, on the fresh-clone CI).
    this.applierRunning = true;
    const run: Promise<void> = this.runApplier().then(
      () => {
        if (this.applier === run) this.applier = undefined;
      },
      (e: unknown) => {
        if (this.applier === run) this.applier = undefined;
        this.hooks.fatal(e);
      },
    );
    this.applier = run;
  }

  /** Resolves once every entry handed to the applier so far is applied (or the driver stopped). */
  async applierIdle(): Promise<void> {
    while (this.applier) await this.applier;
  }

  /** Entries handed to the applier and not yet applied. */
  get applyBacklog(): number {
    return this.applyQueue.length - this.applyQueueHead;
  }

  private async runApplier(): Promise<void> {
    let sinceWake = 0;
    try {
      while (!this.stopped && this.applyQueueHead < this.applyQueue.length) {
        const e = this.applyQueue[this.applyQueueHead++] as Entry;
        this.applyQueueBytes -= e.data.byteLength;
        await this.applyEntry(e);
        if (++sinceWake >= APPLY_WAKE_EVERY || this.applyQueueHead === this.applyQueue.length) {
          sinceWake = 0;
          this.wakeApplied();
          // A snapshot is taken at the applied index, with the state machine's configuration at it.
          this.hooks.afterApply(this._applied);
        }
        if (this.applyQueueHead === this.applyQueue.length || this.applyQueueHead >= 4096) {
          this.applyQueue = this.applyQueue.slice(this.applyQueueHead);
          this.applyQueueHead = 0;
        }
      }
    } finally {
      // No await between the loop's last look at the queue and here (see enqueueApply).
      this.applierRunning = false;
    }
    assert(this.stopped || this.applyQueueBytes === 0, () => `applier idle with ${this.applyQueueBytes} bytes still queued`);
  }

  private async applyEntry(e: Entry): Promise<void> {
    assert(e.index === this._applied + 1 || e.index <= this._applied, () => `apply gap: applied ${this._applied}, next ${e.index}`);
    if (e.index <= this._applied) return;
    let result: unknown = undefined;
    let error: unknown = undefined;
    if (e.type === EntryType.ConfChange) {
      this.hooks.applyConfChange(e);
    } else if (e.data.byteLength > 0) {
      try {
        result = await this.hooks.apply(e);
      } catch (err) {
        error = err;
      }
    }
    this._applied = e.index;
    const p = this.pending.get(e.index);
    if (p) {
      this.pending.delete(e.index);
      clearTimeout(p.timer);
      if (p.term !== e.term) p.reject(new EdgeError("UNAVAILABLE", "leadership lost before the write committed; it was not applied"));
      else if (error !== undefined) p.reject(error);
      else p.resolve(result);
    }
  }

  private wakeApplied(): void {
    if (this.appliedWaiters.length === 0) return;
    const keep: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) w.index <= this._applied ? w.resolve() : keep.push(w);
    this.appliedWaiters = keep;
  }

  private failReads(e: unknown): void {
    for (const ask of this.readInFlight.values()) for (const w of ask.waiters) w.reject(e);
    this.readInFlight.clear();
    for (const w of this.readBatch) w.reject(e);
    this.readBatch = [];
  }

  /** Fail every proposal still waiting (used when a restore replaces the state they were written against). */
  failPending(e: unknown, aboveIndex = 0): void {
    for (const [i, p] of this.pending) {
      if (i <= aboveIndex) continue;
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(i);
    }
  }

  markApplied(index: number): void {
    this._applied = Math.max(this._applied, index);
    this.wakeApplied();
  }
}
