// A follower catching up once before it refuses a secret it does not know. A token created through
// the leader is usable as soon as the leader answers; a follower that has not applied its entry yet
// would refuse it on the calls it answers itself (local endpoints, ?stale reads) for a few ms to
// seconds. So an unknown secret waits for one read barrier (the leader's commit index, then this
// server's apply up to it; read_barrier.ts) and is looked up again. Known secrets never wait.
import { withDeadline } from "../lib/deadline.ts";

/** Bound on the wait: past it the secret is refused as it was before, never answered with a timeout. */
export const ACL_CATCH_UP_MS = 2_000;
/**
 * Unknown secrets waiting at once. Concurrent waiters share one batched ReadIndex round, so a flood of
 * random secrets costs a share of a round each; past this cap they are refused at once, and they never
 * crowd out the read barriers others wait for (their own queue is larger, read_barrier.ts).
 */
export const MAX_CATCH_UPS = 1_024;

/** The raft driver as the catch-up sees it. */
export interface CatchUpRaft {
  readonly isLeader: boolean;
  /** The leader's id; "" when none is known. */
  readonly leader: string;
  readBarrier(): Promise<unknown>;
}

export class AclCatchUp {
  private waiting = 0;

  constructor(
    private readonly raft: () => CatchUpRaft | undefined,
    private readonly ms = ACL_CATCH_UP_MS,
  ) {}

  /**
   * True once this server has applied all the leader had committed when asked; false at once on the
   * leader (its state is the newest there is), with no leader known, or with too many waiting; false
   * when the barrier fails or outlasts the bound. Never throws.
   */
  async wait(): Promise<boolean> {
    const raft = this.raft();
    if (!raft || raft.isLeader || !raft.leader || this.waiting >= MAX_CATCH_UPS) return false;
    this.waiting++;
    try {
      await withDeadline(raft.readBarrier(), this.ms, "ACL catch-up");
      return true;
    } catch {
      // No leader any more, a lost round, a stopped apply, shutting down: the refusal stands.
      return false;
    } finally {
      this.waiting--;
    }
  }
}
