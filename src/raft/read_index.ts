// Linearizable reads (ReadIndex, Raft thesis §6.4): the leader records its commit
// index, confirms it is still leader with one heartbeat round to a quorum, then
// releases the read at that index. Every read queued between two Ready batches
// shares one round; a quorum for a later round also releases earlier ones.
import type { NodeId } from "./storage.ts";

export interface ReadRequest {
  ctx: string;
  /** The server that asked: the leader itself, or a follower that forwarded it. */
  from: NodeId;
}

export interface ReadRound {
  id: string;
  index: number;
  acks: Set<NodeId>;
  reads: ReadRequest[];
}

/** Bounds memory: reads beyond this are refused until rounds complete. */
export const MAX_PENDING_READS = 1 << 16;

export class ReadIndexQueue {
  queued: ReadRequest[] = [];
  rounds: ReadRound[] = [];
  private seq = 0;

  size(): number {
    let n = this.queued.length;
    for (const r of this.rounds) n += r.reads.length;
    return n;
  }

  /** Start a round for everything queued; the caller broadcasts heartbeats carrying its id. */
  startRound(term: number, index: number, self: NodeId): ReadRound {
    const round: ReadRound = { id: `${term}.${++this.seq}`, index, acks: new Set([self]), reads: this.queued };
    this.queued = [];
    this.rounds.push(round);
    return round;
  }

  /** Record an ack; returns the rounds now confirmed (oldest first), removed from the queue. */
  ack(roundId: string, from: NodeId, confirmed: (acks: Set<NodeId>) => boolean): ReadRound[] {
    const at = this.rounds.findIndex((r) => r.id === roundId);
    if (at < 0) return [];
    const round = this.rounds[at]!;
    round.acks.add(from);
    if (!confirmed(round.acks)) return [];
    return this.rounds.splice(0, at + 1);
  }

  clear(): void {
    this.queued = [];
    this.rounds = [];
  }
}
