// When a write that failed on this server may run again on the next leader. Like Nomad's RPC layer
// (a request that meets "no leader" is held for RPCHoldTimeout and sent to the new leader), a write
// the raft core refused because leadership is moving waits for the move and is routed again.
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.ts";

/**
 * True only for refusals raised by the core's `propose` before it assigned an index (nothing was
 * appended, so running the write again cannot apply it twice) whose cause a new leader ends. A
 * TIMEOUT or a lost term after the entry was appended has an unknown outcome and is never retried;
 * a refusal for size or back-pressure would fail again on any leader.
 */
export function retryOnNextLeader(e: unknown): boolean {
  if (e instanceof NotLeaderError) return true;
  return e instanceof ProposalDroppedError && (e.reason === "transfer" || e.reason === "not-voter");
}
