// Errors the raft core raises to its caller: not the leader, proposal dropped,
// membership change refused. Each carries an EdgeError code for the HTTP table.
import { EdgeError } from "../lib/errors.ts";
import type { NodeId } from "./storage.ts";

/** This server is not the leader; `leader` is the one it knows of ("" when none). */
export class NotLeaderError extends EdgeError {
  readonly leader: NodeId;
  constructor(leader: NodeId) {
    super("NO_LEADER", leader ? `not the leader (leader is ${leader})` : "No cluster leader");
    this.name = "NotLeaderError";
    this.leader = leader;
  }
}

/**
 * Why a leader refused a proposal. "transfer" and "not-voter" end when leadership moves on (the caller
 * may retry on the next leader); "too-large" never ends; "uncommitted" is back-pressure on this leader.
 */
export type DropReason = "transfer" | "not-voter" | "too-large" | "uncommitted";

/** The leader refused the proposal; nothing was appended. */
export class ProposalDroppedError extends EdgeError {
  readonly reason: DropReason;
  constructor(reason: DropReason, message: string) {
    super("UNAVAILABLE", `proposal dropped: ${message}`);
    this.name = "ProposalDroppedError";
    this.reason = reason;
  }
}

/** A membership change that cannot be proposed now (one is pending) or is invalid for the configuration. */
export class ConfChangeError extends EdgeError {
  constructor(reason: string) {
    super("CONFLICT", `configuration change refused: ${reason}`);
    this.name = "ConfChangeError";
  }
}
