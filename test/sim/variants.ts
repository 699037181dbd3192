// Deliberately broken variants (test-only switches) the simulation must catch.
import type { SimOptions } from "./cluster.ts";

export const BUG_VARIANTS: Record<string, Partial<SimOptions>> = {
  /** Commit an entry of an older term by counting replicas (Figure 8). */
  "commit-old-term": { bugs: { commitOldTerm: true } },
  /** Accept AppendEntries without checking the previous entry's term. */
  "skip-log-match": { bugs: { skipLogMatchCheck: true } },
  /** Grant votes to candidates whose log is behind. */
  "vote-without-log-check": { bugs: { voteWithoutLogCheck: true } },
  /** Serve ReadIndex without confirming leadership with a quorum. */
  "read-without-quorum": { bugs: { readWithoutQuorum: true } },
  /** The driver does not persist the vote, so a restart forgets it. */
  "forget-vote": { forgetVoteOnRestart: true },
  /** The driver sends a Ready's messages before its entries and hard state are durable. */
  "send-before-persist": { sendBeforePersist: true },
};

/** Variants that make sense on the simulated disk (forget-vote edits the hard state in memory). */
export const DISK_BUG_VARIANTS: string[] = ["send-before-persist", "commit-old-term"];
