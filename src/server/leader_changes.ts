// Waiting on leader changes: the router's write retry, a leadership transfer and placement's wait for
// a leader all resume when raft reports a new leader (or none), or at their own deadline.
import { withDeadline } from "../lib/deadline.ts";
import { waitForLeader } from "./placement.ts";

export class LeaderChanges {
  private waiters: (() => void)[] = [];

  /** Raft saw the leader change: wake everyone waiting. */
  changed(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves at the next leader change, or after `ms`. */
  next(ms: number): Promise<void> {
    const changed = new Promise<void>((resolve) => this.waiters.push(resolve));
    return withDeadline(changed, Math.max(0, ms), "leader change").catch(() => {});
  }

  /** Resolves true once `hasLeader()`, false after `ms` without one (see placement's waitForLeader). */
  leaderKnown(hasLeader: () => boolean, ms: number): Promise<boolean> {
    return waitForLeader(this.waiters, hasLeader, ms);
  }
}
