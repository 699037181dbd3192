// Drives the pure raft core: deadline-scheduled ticks, the Ready loop (persist, then send, then hand
// committed entries to the applier, then advance), the applier (the state machine applies in order,
// apart from the loop), group commit, proposals waiting for their index to apply, and snapshot sends.
// Read barriers (read_barrier.ts) and commit-only hard states (commit_writer.ts) are its parts.
import { assert } from "../lib/assert.ts";
import { Proposals } from "./proposals.ts";
import { EdgeError, hasCode } from "../lib/errors.ts";
import type { Message } from "../raft/message.ts";
import type { RawNode, Ready } from "../raft/raw_node.ts";
import { EntryType, type Entry, type LogStorage, type SnapshotMeta } from "../raft/storage.ts";
import type { Logger } from "../lib/logger.ts";
import type { Metrics } from "./metrics.ts";
import { AppliedWaiters } from "./applied_waiters.ts";
import { ReadBarriers } from "./read_barrier.ts";
import { CommitWriter } from "./commit_writer.ts";
import { RoundGate } from "./round_gate.ts";

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

const MAX_PENDING_PROPOSALS = 16_384;
const PROPOSAL_TIMEOUT_MS = 30_000;
/**
 * Committed entries waiting for the applier, at most this many (and APPLY_QUEUE_BYTES of data): past it
 * the Ready loop waits for the applier to catch up, as it did when it applied inline.
 */
export const APPLY_QUEUE_ENTRIES = 65_536;
const APPLY_QUEUE_BYTES = 64 * 1024 * 1024;
/** The applier wakes index waiters and offers a snapshot at least every this many entries. */
const APPLY_WAKE_EVERY = 256;

export class RaftDriver {
  private running = false;
  private scheduled = false;
  private stopped = false;
  private tickTimer: ReturnType<typeof setTimeout> | undefined;
  private nextTickAt = 0;
  private readonly proposals = new Proposals();
  private readonly appliedWaiters = new AppliedWaiters();
  private readonly reads: ReadBarriers;
  private readonly commits: CommitWriter;
  private readonly rounds = new RoundGate({ proposeNow: (data, timeoutMs) => this.proposeNow(data, timeoutMs) });
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
  /** Set once an entry is not understood (NOT_APPLIED, apply_stop.ts): nothing is applied from it on. */
  private halt: unknown;
  lastContact = 0;

  constructor(
    readonly node: RawNode,
    private readonly log: LogStorage,
    private readonly hooks: DriverHooks,
    private readonly tickMs: number,
    logger: Logger,
    private readonly metrics: Metrics,
    applied: number,
  ) {
    this._applied = applied;
    this.commits = new CommitWriter({ write: (hs) => log.setHardState(hs), stopped: () => this.stopped, fatal: (e) => hooks.fatal(e) });
    this.reads = new ReadBarriers({
      logger,
      readIndex: (ctx) => node.readIndex(ctx),
      kick: () => this.kick(),
      stopped: () => this.stopped,
      waitApplied: (index, ms, what) => this.waitApplied(index, ms, what),
    });
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
    this.proposals.failAll(err);
    this.rounds.fail(err);
    this.reads.fail(err);
    this.appliedWaiters.fail(err);
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
      this.reads.retry(now);
      this.rounds.release();
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
    if (this.proposals.size + this.rounds.size >= MAX_PENDING_PROPOSALS)
      return Promise.reject(new EdgeError("UNAVAILABLE", "too many proposals in flight; retry"));
    return this.rounds.holds(this._isLeader) ? this.rounds.hold(data, timeoutMs) : this.proposeNow(data, timeoutMs);
  }

  private proposeNow(data: Uint8Array, timeoutMs: number): Promise<unknown> {
    const { index, term } = this.node.propose(data);
    this.kick();
    return this.proposals.add(index, term, timeoutMs);
  }

  /**
   * Resolves once this server has applied at least `index`. With `timeoutMs`, rejects with TIMEOUT
   * (`what`) after it and forgets the waiter, so callers that give up leave nothing behind. Rejects
   * with UNAVAILABLE when the driver stops first.
   */
  waitApplied(index: number, timeoutMs?: number, what = `timed out waiting for index ${index} to apply`): Promise<void> {
    if (this._applied >= index) return Promise.resolve();
    if (this.halt) return Promise.reject(this.halt);
    if (this.stopped) return Promise.reject(new EdgeError("UNAVAILABLE", "server is shutting down"));
    return this.appliedWaiters.wait(index, timeoutMs, what);
  }

  /** A linearizable read barrier (ReadBarriers.barrier): resolves with the confirmed index once applied here. */
  readBarrier(): Promise<number> {
    return this.reads.barrier();
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
      if (wasLeader && !this._isLeader) this.reads.fail(new EdgeError("NO_LEADER", "leadership lost while confirming a read; retry"));
      // A follower's reads went to the old leader, whose answer may never come: ask the new one.
      else if (!this._isLeader && this._lead !== prevLead && this._lead !== "" && this.reads.waiting)
        this.reads.retry(performance.now(), true);
    }
    const prevTerm = this._term;
    if (rd.hardState) this._term = rd.hardState.term;
    this.rounds.readied(rd.softState !== undefined, this._isLeader, rd.entries.at(-1)?.index, rd.hardState?.commit);
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
    // The batch is written and its fsync started before anything else runs (the applier below, and the
    // answers it releases, would otherwise go first and delay the fsync that the next answers wait for).
    const t0 = performance.now();
    const appended = rd.entries.length > 0 ? this.log.append(rd.entries) : undefined;
    // On the leader, committed entries below this batch's first entry are durable here (earlier batches)
    // and on a quorum: the applier takes them now, while this batch is written, so a write's answer does
    // not wait for the fsync of the writes proposed after it (etcd applies beside its Save the same way).
    // Those at or above it (a single server's own, committed in the same batch) wait. A follower answers
    // no writes: it acknowledges the batch first and applies after, as its acknowledgement is what the
    // leader's commit waits for.
    let applied = 0;
    if (early && this._isLeader && rd.committedEntries.length > 0) {
      const firstNew = (rd.entries[0] as Entry).index;
      while (applied < rd.committedEntries.length && (rd.committedEntries[applied] as Entry).index < firstNew) applied++;
      if (applied > 0)
        this.enqueueApply(applied === rd.committedEntries.length ? rd.committedEntries : rd.committedEntries.slice(0, applied));
    }
    if (appended) {
      await appended;
      this.metrics.observe("edgenode_raft_fsync_ms", performance.now() - t0, {}, "WAL append+fsync latency (ms)");
    }
    // A hard state that only moves the commit index waits until after apply: commit is volatile in
    // raft (recovered from the leader), so acknowledging a quorum-durable write need not wait for a
    // third fsync. Term and vote changes are persisted before anything is sent, as before.
    const commitOnly = rd.hardState !== undefined && rd.hardState.term === prevTerm && rd.hardState.vote === this.persistedVote;
    if (rd.hardState && !commitOnly) {
      this.commits.supersede();
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
    if (rd.committedEntries.length > applied) this.enqueueApply(applied === 0 ? rd.committedEntries : rd.committedEntries.slice(applied));
    if (rd.hardState && commitOnly) this.commits.later(rd.hardState);
    if (this.applyQueue.length - this.applyQueueHead > APPLY_QUEUE_ENTRIES || this.applyQueueBytes > APPLY_QUEUE_BYTES)
      await this.applierIdle();
    // 4. Serve read states.
    this.reads.served(rd.readStates);
    this.rounds.afterReady(this._isLeader);
  }

  private enqueueApply(entries: readonly Entry[]): void {
    if (this.halt) return; // the log keeps them; a restart on a newer binary applies them
    for (const e of entries) {
      this.applyQueue.push(e);
      this.applyQueueBytes += e.data.byteLength;
    }
    if (this.applierRunning) return;
    // Whether an applier runs is a flag the applier clears itself, in the same synchronous step as its
    // last look at the queue: cleared in a continuation of its promise, it left a window of a few
    // microtasks in which entries handed over here were seen as taken and never applied.
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
      while (!this.stopped && !this.halt && this.applyQueueHead < this.applyQueue.length) {
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
    let result: unknown;
    let error: unknown;
    if (e.type === EntryType.ConfChange) {
      this.hooks.applyConfChange(e);
    } else if (e.data.byteLength > 0) {
      try {
        result = await this.hooks.apply(e);
      } catch (err) {
        if (hasCode(err, "NOT_APPLIED")) return this.haltAt(err);
        error = err;
      }
    }
    this._applied = e.index;
    this.proposals.settle(e.index, e.term, result, error);
  }

  /** Applies nothing from here on (apply_stop.ts); proposals time out (another server may apply them). */
  private haltAt(err: unknown): void {
    this.halt = err;
    this.applyQueue = [];
    this.applyQueueHead = this.applyQueueBytes = 0;
    this.appliedWaiters.fail(err);
  }

  private wakeApplied(): void {
    this.appliedWaiters.wake(this._applied);
  }

  markApplied(index: number): void {
    this._applied = Math.max(this._applied, index);
    this.wakeApplied();
  }
}
