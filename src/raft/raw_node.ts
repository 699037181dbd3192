// The driver-facing handle on the raft core: requests in, Ready batches out,
// acknowledged by advance(). Contract for the driver (server/ or the simulation):
//   1. rd = ready(); persist rd.snapshot (storage.installSnapshot, after restoring the state machine from
//      the streamed file), then rd.entries (append, may replace a suffix), then rd.hardState — all durable;
//   2. only then send rd.messages (a "snap" message asks the driver to stream to m.to the snapshot that
//      m.snapshot names; when done call reportSnapshot(m.to, ok) — a snapshot no longer stored is a
//      failure, and the core asks again with the one it has now; on the receiver, step() the "snap"
//      message only after the whole file arrived);
//   3. apply rd.committedEntries in order (ConfChange entries: decode with decodeConfChange to learn
//      addresses; the core applies the configuration itself in advance()); serve rd.readStates once
//      applied >= index;
//   4. advance(rd). Do not call ready() again before advance(). step/tick/propose may be called between.
// Snapshots the application takes are reported through storage: setSnapshot(meta) then compact(i).
// Start: storage.initialState().config is the configuration as of snapshotMeta() (bootstrap a new cluster
// by recording setSnapshot({ index: 0, term: 0, config }) on every initial server, then campaign() on
// one); a joining server starts with an empty configuration and waits for the leader. Configuration
// entries between the snapshot and `applied` are replayed from the log by the constructor.
// Restore: the core knows nothing of it. A restore is an ordinary Normal entry the application
// interprets (every server swaps its state machine from a staged file); after applying it the
// application takes a snapshot and compacts the log through the entry (setSnapshot + compact), so a
// follower behind it is sent that snapshot. forceSnapshot(to) sends the current snapshot to a follower
// whatever its log holds.
import { assert } from "../lib/assert.ts";
import type { ConfChange } from "./membership.ts";
import type { Message } from "./message.ts";
import { Raft } from "./raft.ts";
import type { RaftBugs, RaftConfig, RaftState } from "./raft.ts";
import { EntryType, entrySize } from "./storage.ts";
import type { Configuration, Entry, HardState, NodeId, SnapshotMeta } from "./storage.ts";

export type { RaftConfig, RaftState, RaftBugs } from "./raft.ts";
export type { Message } from "./message.ts";
export type { ConfChange } from "./membership.ts";

export interface SoftState {
  lead: NodeId;
  state: RaftState;
}

export interface ReadState {
  ctx: string;
  index: number;
}

export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: SnapshotMeta;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  mustSync: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  state: RaftState;
  commit: number;
  applied: number;
  lastIndex: number;
  config: Configuration;
  /** On the leader; `heardAgoTicks`: ticks since the follower last answered. */
  progress?: Record<NodeId, { match: number; next: number; state: string; heardAgoTicks: number }>;
  leadTransferee?: NodeId;
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private inReady = false;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoft = { lead: this.raft.lead, state: this.raft.state };
    this.prevHard = this.hardState();
  }

  /** Test-only: break the protocol on purpose (see RaftBugs). */
  setBugs(bugs: RaftBugs): void {
    this.raft.bugs = bugs;
  }

  tick(): void {
    this.raft.tick();
  }

  step(m: Message): void {
    this.raft.step(m);
  }

  /** Append a command; throws NotLeaderError or ProposalDroppedError. Replicated when the Ready is taken. */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose(data);
  }

  /**
   * Propose one membership change (throws ConfChangeError while another is not yet applied). "addVoter" of
   * a server not in the configuration adds it as a non-voter that the leader promotes once caught up.
   * The change takes effect on each server when its entry is applied (advance()).
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.raft.proposeConfChange(cc);
  }

  /** Request a linearizable read index; the answer appears in Ready.readStates as { ctx, index }. */
  readIndex(ctx: string): void {
    this.raft.readIndex(ctx);
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  campaign(): void {
    this.raft.campaign(false);
  }

  /** Whether this server may stand for election (Raft.mayCampaign); false as leader hands leadership away. */
  setMayCampaign(may: boolean): void {
    this.raft.setMayCampaign(may);
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(to, ok);
  }

  reportUnreachable(to: NodeId): void {
    this.raft.reportUnreachable(to);
  }

  /** Leader only: send `to` the current snapshot now (after a restore, for followers behind it). */
  forceSnapshot(to: NodeId): void {
    this.raft.forceSnapshot(to);
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  /** True when ready() has something. May start deferred work (proposal broadcast, read round). */
  hasReady(): boolean {
    const r = this.raft;
    if (this.inReady) return false;
    if (r.hasPendingFlush()) r.flushPending();
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.length > 0 || r.log.unstableSnapshot !== undefined) return true;
    if (r.log.hasNextCommitted()) return true;
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.state) return true;
    const hs = this.prevHard;
    return hs.term !== r.term || hs.vote !== r.vote || hs.commit !== r.log.committed;
  }

  ready(): Ready {
    assert(!this.inReady, "ready() called again before advance()");
    const r = this.raft;
    r.flushPending();
    const rd: Ready = {
      entries: r.log.unstable.slice(),
      committedEntries: r.log.nextCommitted(r.maxCommittedBytesPerReady),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];
    if (r.log.unstableSnapshot) rd.snapshot = r.log.unstableSnapshot;
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.state) {
      rd.softState = { lead: r.lead, state: r.state };
      this.prevSoft = rd.softState;
    }
    const hs = this.hardState();
    const prev = this.prevHard;
    if (hs.term !== prev.term || hs.vote !== prev.vote || hs.commit !== prev.commit) {
      rd.hardState = hs;
      rd.mustSync = hs.term !== prev.term || hs.vote !== prev.vote;
      this.prevHard = hs;
    }
    if (rd.entries.length > 0 || rd.snapshot) rd.mustSync = true;
    this.inReady = true;
    return rd;
  }

  advance(rd: Ready): void {
    assert(this.inReady, "advance() without ready()");
    this.inReady = false;
    const r = this.raft;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.index);
      if (rd.snapshot.index > r.log.applied) {
        assert(rd.snapshot.index <= r.log.committed, "snapshot past commit");
        r.log.applied = rd.snapshot.index;
      }
    }
    // The newest persisted entry still in the unstable tail (a later step may have replaced some).
    for (let k = rd.entries.length - 1; k >= 0; k--) {
      const e = rd.entries[k]!;
      if (r.log.termOrUndefined(e.index) === e.term) {
        r.log.stableTo(e.index, e.term);
        break;
      }
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) {
      let size = 0;
      for (const e of rd.committedEntries) {
        // A snapshot restored meanwhile makes these entries moot; skip those it covers.
        if (e.index <= r.log.applied) continue;
        if (e.type === EntryType.ConfChange) {
          r.log.applied = e.index; // the change takes effect as its entry is applied
          r.applyConfEntry(e);
        }
        size += entrySize(e);
      }
      if (lastCommitted.index > r.log.applied) r.log.appliedTo(lastCommitted.index);
      if (r.state === "leader") r.uncommittedSize = Math.max(0, r.uncommittedSize - size);
    }
  }

  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      state: r.state,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      config: { servers: r.config.servers.map((s) => ({ ...s })) },
    };
    if (r.state === "leader") {
      st.progress = {};
      for (const [id, pr] of r.prs)
        st.progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          heardAgoTicks: id === r.id ? 0 : r.tickCount - pr.lastHeardTick,
        };
      if (r.leadTransferee) st.leadTransferee = r.leadTransferee;
    }
    return st;
  }
}
