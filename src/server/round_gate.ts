// Group commit across rounds: while a leader's newest batch of entries is uncommitted, the writes that
// arrive are held and proposed together, in order, as the next batch once it commits. A round (an
// fsync on every server, an append and its answer to each follower) costs far more CPU than a write
// in it, so fewer, larger rounds serve more writes from the same cores (test/bench/RESULTS.md § cluster).
// The batch is proposed one event-loop turn after the commit (setImmediate, not a timer): the requests
// already read from their sockets by then join it. A held write waits at most until the driver's next
// tick, so a round that never commits (no quorum) does not keep it from its own deadline.

interface Held {
  data: Uint8Array;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface RoundGateHost {
  /** Proposes to the core now: the write's promise (it settles once applied), or a throw as the core refuses it. */
  proposeNow(data: Uint8Array, timeoutMs: number): Promise<unknown>;
}

export class RoundGate {
  private held: Held[] = [];
  /** The last index of the newest batch this leader wrote (0: none since the last leadership change). */
  private roundEnd = 0;
  private commit = 0;
  /** A release is scheduled for the next turn of the event loop. */
  private releasing = false;

  constructor(private readonly host: RoundGateHost) {}

  get size(): number {
    return this.held.length;
  }

  /** Whether a write proposed now must wait: a leader's round is open, or earlier writes wait (order is kept). */
  holds(isLeader: boolean): boolean {
    return this.held.length > 0 || (isLeader && this.roundEnd > this.commit);
  }

  hold(data: Uint8Array, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => this.held.push({ data, timeoutMs, resolve, reject }));
  }

  /** A Ready was taken: the leadership changed (a new round count), a batch ending at `lastEntry` was written as leader, the commit moved. */
  readied(leadershipChanged: boolean, isLeader: boolean, lastEntry: number | undefined, commit: number | undefined): void {
    if (leadershipChanged) this.roundEnd = 0;
    if (commit !== undefined) this.commit = commit;
    if (isLeader && lastEntry !== undefined) this.roundEnd = lastEntry;
  }

  /** After a Ready: proposes the held writes at the loop's next turn once no round is open (a follower's fail as any proposal there does). */
  afterReady(isLeader: boolean): void {
    if (this.held.length > 0 && !(isLeader && this.roundEnd > this.commit) && !this.releasing) {
      this.releasing = true;
      setImmediate(() => {
        this.releasing = false;
        this.release();
      });
    }
  }

  /** Proposes every held write now, in order; each settles as its proposal does. */
  release(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const h of held) {
      try {
        this.host.proposeNow(h.data, h.timeoutMs).then(h.resolve, h.reject);
      } catch (e) {
        h.reject(e);
      }
    }
  }

  /** Every held write fails with `err` (the driver stopped). */
  fail(err: Error): void {
    for (const h of this.held.splice(0)) h.reject(err);
  }
}
