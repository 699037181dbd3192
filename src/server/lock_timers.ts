// Leader-only TTL timers, one per held lock. Built from the state when this
// server establishes leadership (after an election or a restore), dropped when
// it revokes; an expiry is committed through raft like any other write.
import type { Logger } from "../lib/logger.ts";
import type { StateStore } from "../state/state_store.ts";

export const MAX_LOCK_TIMERS = 100_000;

export class LockTimers {
  private timers = new Map<string, { lockId: string; timer: ReturnType<typeof setTimeout> }>();
  private stopped = false;

  constructor(
    private readonly expire: (path: string, lockId: string) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /** Every held lock gets its full TTL from now. */
  rebuild(state: StateStore): number {
    this.clear();
    const held = state.heldLocks();
    for (const l of held) this.arm(l.path, l.lockId, l.ttlMs);
    return held.length;
  }

  arm(path: string, lockId: string, ttlMs: number): void {
    if (this.stopped) return;
    const prev = this.timers.get(path);
    if (prev) clearTimeout(prev.timer);
    else if (this.timers.size >= MAX_LOCK_TIMERS) {
      this.logger.warn("too many lock timers; not arming", { path });
      return;
    }
    const timer = setTimeout(() => {
      if (this.timers.get(path)?.timer !== timer) return;
      this.timers.delete(path);
      this.expire(path, lockId).catch((e: unknown) => {
        // Lost leadership or a raft error: the next leader rebuilds the timer from the state.
        this.logger.warn("lock expiry not committed", { path, error: (e as Error).message });
      });
    }, ttlMs);
    this.timers.set(path, { lockId, timer });
  }

  disarm(path: string, lockId: string): void {
    const t = this.timers.get(path);
    if (t && t.lockId === lockId) {
      clearTimeout(t.timer);
      this.timers.delete(path);
    }
  }

  get size(): number {
    return this.timers.size;
  }

  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
  }

  stop(): void {
    this.stopped = true;
    this.clear();
  }
}
