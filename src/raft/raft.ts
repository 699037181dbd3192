// The consensus state machine (Raft paper Figure 2 plus PreVote, CheckQuorum,
// leadership transfer, ReadIndex, one-at-a-time membership and snapshots). Pure:
// inputs are tick() and step(); outputs accumulate in `msgs`, the log's unstable
// tail and `readStates`, which RawNode hands to the driver as a Ready batch.
//
// Where this departs from the paper's Figure 2, and why:
// - PreVote (thesis §9.6) before a real election, and a vote/pre-vote request from a higher term is
//   ignored while a leader was heard within the election timeout (unless it is a transfer): a partitioned
//   or removed server cannot depose a healthy leader.
// - CheckQuorum: a leader that heard from no quorum for an election timeout steps down.
// - Membership changes one server at a time, taking effect when applied; a new leader proposes none until
//   everything up to its election (hence its no-op) is applied, avoiding the single-server-change bug.
// - The leader counts its own entries as matched when appended; the driver persists them before it sends
//   the messages or applies the committed entries of the same Ready.
import { assert, assertIndex } from "../lib/assert.ts";
import { ConfChangeError, NotLeaderError, ProposalDroppedError } from "./errors.ts";
import { RaftLog } from "./log.ts";
import { applyChange, cloneConfig, committedIndex, decodeConfChange, encodeConfChange, isVoter, quorum, voters } from "./membership.ts";
import type { ConfChange } from "./membership.ts";
import { isWellFormed, message } from "./message.ts";
import type { Message, MessageType } from "./message.ts";
import { Progress } from "./progress.ts";
import { MAX_PENDING_READS, ReadIndexQueue } from "./read_index.ts";
import type { ReadRequest } from "./read_index.ts";
import { CompactedError, EntryType, entrySize } from "./storage.ts";
import type { Configuration, Entry, LogReader, NodeId } from "./storage.ts";

export type RaftState = "leader" | "follower" | "candidate" | "precandidate";

export interface RaftConfig {
  id: NodeId;
  /** initialState() gives the hard state and the configuration as of storage.snapshotMeta() (or the bootstrap one). */
  storage: LogReader;
  /** Election timeout in ticks; each follower draws its timeout from [electionTick, 2*electionTick). */
  electionTick: number;
  heartbeatTick: number;
  /** Seeded generator in [0,1); the only source of randomness. */
  random: () => number;
  /** Last index the state machine has applied at start; defaults to storage.snapshotMeta().index. */
  applied?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  maxUncommittedBytes?: number;
  maxCommittedBytesPerReady?: number;
  log?: (level: "debug" | "info" | "warn", msg: string) => void;
}

/** Test-only switches that break the protocol on purpose, so the simulation can prove its checker catches them. */
export interface RaftBugs {
  /** Commit an entry of an older term by counting replicas (violates Figure 8). */
  commitOldTerm?: boolean;
  /** Skip the previous-entry check on AppendEntries (violates log matching). */
  skipLogMatchCheck?: boolean;
  /** Grant votes without the up-to-date check (violates leader completeness). */
  voteWithoutLogCheck?: boolean;
  /** Serve ReadIndex without the quorum heartbeat round. */
  readWithoutQuorum?: boolean;
}

const NONE = "";
const TRANSFER = "transfer";

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: RaftState = "follower";
  readonly log: RaftLog;
  config: Configuration;
  prs = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: { ctx: string; index: number }[] = [];
  leadTransferee: NodeId = NONE;
  /** Index of the latest proposed configuration change; a new one waits until applied >= it. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  /** Non-voters added by "addVoter", promoted automatically once caught up. */
  readonly promoteWhenCaughtUp = new Set<NodeId>();
  readonly reads = new ReadIndexQueue();
  /** Proposals since the last broadcast: replicated together when the Ready is taken (batching). */
  broadcastPending = false;
  /**
   * False while the server cannot apply what it commits (an entry it does not understand): it still
   * replicates and votes, so the cluster keeps its quorum, but it neither stands for election nor takes a
   * transfer, and as leader it hands leadership to the most up-to-date voter. etcd-raft has no such knob
   * for a voter (only learners are not promotable); it is checked wherever promotable() is.
   */
  mayCampaign = true;

  electionElapsed = 0;
  /** Ticks since this node started: the core's only notion of time (Progress.lastHeardTick). */
  private ticks = 0;

  get tickCount(): number {
    return this.ticks;
  }
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  readonly maxUncommittedBytes: number;
  readonly maxCommittedBytesPerReady: number;
  private readonly random: () => number;
  private readonly logf: (level: "debug" | "info" | "warn", msg: string) => void;
  bugs: RaftBugs = {};

  constructor(cfg: RaftConfig) {
    assert(typeof cfg.id === "string" && cfg.id.length > 0, "raft: id must be a non-empty string");
    assert(Number.isSafeInteger(cfg.electionTick) && cfg.electionTick > 0, "raft: electionTick must be > 0");
    assert(Number.isSafeInteger(cfg.heartbeatTick) && cfg.heartbeatTick > 0, "raft: heartbeatTick must be > 0");
    assert(cfg.heartbeatTick < cfg.electionTick, "raft: heartbeatTick must be below electionTick");
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.random = cfg.random;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1 << 20;
    this.maxInflightMsgs = cfg.maxInflightMsgs ?? 256;
    this.maxInflightBytes = cfg.maxInflightBytes ?? 0;
    this.maxUncommittedBytes = cfg.maxUncommittedBytes ?? 0;
    this.maxCommittedBytesPerReady = cfg.maxCommittedBytesPerReady ?? 64 << 20;
    assert(this.maxInflightMsgs > 0, "raft: maxInflightMsgs must be > 0");
    this.logf = cfg.log ?? (() => {});

    const { hardState, config } = cfg.storage.initialState();
    assertIndex(hardState.term, "hardState.term");
    assertIndex(hardState.commit, "hardState.commit");
    // By default the state machine is assumed restored from the newest snapshot.
    this.log = new RaftLog(cfg.storage, hardState.commit, cfg.applied ?? cfg.storage.snapshotMeta().index);
    this.config = cloneConfig(config);
    // Configuration changes take effect when applied: replay those between the snapshot and `applied`.
    const from = Math.max(cfg.storage.snapshotMeta().index + 1, this.log.firstIndex());
    for (let i = from; i <= this.log.applied; ) {
      const batch = this.log.slice(i, this.log.applied + 1, 8 << 20);
      for (const e of batch) if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
      i += batch.length;
    }
    this.becomeFollower(hardState.term, NONE);
    this.vote = hardState.vote;
  }

  // ---------------------------------------------------------------- state transitions

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private reset(term: number): void {
    assert(term >= this.term, () => `term moved back from ${this.term} to ${term}`);
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.prs.clear();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.broadcastPending = false;
    this.reads.clear();
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = "follower";
  }

  private becomePreCandidate(): void {
    assert(this.state !== "leader", "invalid transition leader -> precandidate");
    this.votes.clear();
    this.lead = NONE;
    this.state = "precandidate";
  }

  private becomeCandidate(): void {
    assert(this.state !== "leader", "invalid transition leader -> candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = "candidate";
  }

  private becomeLeader(): void {
    assert(this.state === "candidate", "invalid transition to leader");
    this.reset(this.term);
    this.lead = this.id;
    this.state = "leader";
    const last = this.log.lastIndex();
    for (const s of this.config.servers) {
      const pr = new Progress(last + 1, this.maxInflightMsgs, this.maxInflightBytes);
      pr.recentActive = true;
      pr.lastHeardTick = this.ticks;
      this.prs.set(s.id, pr);
    }
    const self = this.prs.get(this.id);
    if (self) {
      self.match = last;
      self.becomeReplicate();
    }
    // Entries of earlier terms may hold a configuration change not yet applied here.
    this.pendingConfIndex = last;
    this.logf("info", `${this.id} became leader at term ${this.term}`);
    this.appendEntries([{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.bcastAppend();
  }

  private promotable(): boolean {
    return this.mayCampaign && isVoter(this.config, this.id) && this.log.unstableSnapshot === undefined;
  }

  /** Sets mayCampaign; a leader that may not campaign hands leadership away (again each election timeout). */
  setMayCampaign(may: boolean): void {
    this.mayCampaign = may;
    if (!may && this.state === "leader") this.handOff();
  }

  /** Transfer to the voter with the longest log (ties: the lowest id, so the choice is deterministic). */
  private handOff(): void {
    if (this.leadTransferee !== NONE) return;
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const v of voters(this.config)) {
      const pr = this.prs.get(v);
      if (v === this.id || !pr) continue;
      if (pr.match > bestMatch || (pr.match === bestMatch && v < best)) {
        best = v;
        bestMatch = pr.match;
      }
    }
    if (best === NONE) {
      this.logf("warn", `${this.id} may not lead but has no other voter to hand leadership to`);
      return;
    }
    this.logf("info", `${this.id} may not lead: transferring leadership to ${best}`);
    this.transferLeadership(best);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.ticks++;
    if (this.state === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.logf("warn", `${this.id} stepped down at term ${this.term}: no quorum contact for an election timeout`);
        this.becomeFollower(this.term, NONE);
        return;
      }
      for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE; // transfer did not finish in time
      if (!this.mayCampaign) this.handOff();
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      // The newest pending read round rides along (as in etcd): if its answers were lost, these
      // confirm it, and with it every older round.
      this.bcastHeartbeat(this.reads.rounds.at(-1)?.id ?? "");
      // Retry promotions refused earlier (transfer in progress, change pending): an idle caught-up
      // non-voter sends no new acknowledgements to react to.
      for (const id of this.promoteWhenCaughtUp) {
        const pr = this.prs.get(id);
        if (pr) this.maybePromote(id, pr);
      }
    }
  }

  private quorumActive(): boolean {
    const vs = voters(this.config);
    let active = 0;
    for (const v of vs) if (v === this.id || this.prs.get(v)?.recentActive) active++;
    return active >= quorum(vs.length);
  }

  // ---------------------------------------------------------------- elections

  /** Start an election now (PreVote first unless this is a leadership transfer). */
  campaign(transfer: boolean): void {
    if (this.state === "leader") return;
    if (!this.promotable()) {
      this.logf("debug", `${this.id} cannot campaign: not a voter or a snapshot is pending`);
      return;
    }
    if (this.hasUnappliedConfChange()) {
      this.logf("debug", `${this.id} cannot campaign: a committed configuration change is not applied yet`);
      return;
    }
    let voteTerm: number;
    let type: MessageType;
    if (this.preVote && !transfer) {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
      type = "preVote";
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      type = "vote";
    }
    if (this.poll(this.id, true) === "won") {
      if (type === "preVote") this.campaign(true);
      else this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const v of voters(this.config)) {
      if (v === this.id) continue;
      this.send(message({ type, from: this.id, to: v, term: voteTerm, index, logTerm, context: transfer ? TRANSFER : "" }));
    }
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    for (let i = lo; i <= this.log.committed; ) {
      const batch = this.log.slice(i, this.log.committed + 1, 8 << 20);
      for (const e of batch) if (e.type === EntryType.ConfChange) return true;
      i += batch.length;
    }
    return false;
  }

  private poll(from: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const vs = voters(this.config);
    let yes = 0;
    let no = 0;
    for (const v of vs) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = quorum(vs.length);
    if (yes >= q) return "won";
    if (no > vs.length - q) return "lost";
    return "pending";
  }

  // ---------------------------------------------------------------- step

  /** Process a message from a peer. Malformed or stale messages are dropped, never thrown on. */
  step(m: Message): void {
    if (!isWellFormed(m)) {
      this.logf("warn", `${this.id} dropped a malformed message`);
      return;
    }
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const force = m.context === TRANSFER;
        const inLease = this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // A leader was heard recently: this candidate is disruptive (partitioned, or removed).
          this.logf("debug", `${this.id} ignored ${m.type} from ${m.from} at term ${m.term}: leader lease`);
          return;
        }
      }
      if (m.type === "preVote") {
        // Never change term on a PreVote.
      } else if (m.type === "preVoteResp" && !m.reject) {
        // The term is bumped when the real election starts.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (m.type === "app" || m.type === "heartbeat") {
        // A stale leader (e.g. partitioned): tell it our term so it steps down (Figure 2: reply false);
        // with PreVote, a server that advanced its term could otherwise never rejoin.
        this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term }));
      } else if (m.type === "preVote") {
        this.send(message({ type: "preVoteResp", from: this.id, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.state) {
      case "leader":
        this.stepLeader(m);
        break;
      case "candidate":
      case "precandidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === "preVote" && m.term > this.term);
    const respType = m.type === "vote" ? "voteResp" : "preVoteResp";
    const upToDate = this.bugs.voteWithoutLogCheck || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      this.send(message({ type: respType, from: this.id, to: m.from, term: m.term }));
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case "timeoutNow":
        if (!this.mayCampaign) {
          this.logf("info", `${this.id} ignores timeoutNow from ${m.from}: it may not campaign`);
          break;
        }
        this.logf("info", `${this.id} received timeoutNow from ${m.from}: campaigning for leadership transfer`);
        this.campaign(true);
        break;
      case "readIndexResp":
        if (!m.reject) this.readStates.push({ ctx: m.context, index: m.index });
        break;
      case "transferLeader":
        if (this.lead !== NONE) this.send({ ...m, from: this.id, to: this.lead, term: this.term });
        break;
      default:
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "app":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case "preVoteResp":
      case "voteResp": {
        if ((m.type === "preVoteResp") !== (this.state === "precandidate")) return;
        const r = this.poll(m.from, !m.reject);
        if (r === "won") {
          if (this.state === "precandidate") this.campaign(true);
          else {
            this.becomeLeader();
          }
        } else if (r === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        break;
      }
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term, index: this.log.committed }));
      return;
    }
    let last: number | undefined;
    if (this.bugs.skipLogMatchCheck && m.index <= this.log.lastIndex()) {
      last = this.log.maybeAppend(m.index, this.log.termOrUndefined(m.index) ?? m.logTerm, m.commit, m.entries);
    } else {
      last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    }
    if (last !== undefined) {
      this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term, index: last }));
      return;
    }
    const hintIndex = Math.min(m.index, this.log.lastIndex());
    const hint = this.log.findConflictByTerm(hintIndex, m.logTerm);
    this.send(
      message({
        type: "appResp",
        from: this.id,
        to: m.from,
        term: this.term,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(match, commit), so this never passes our matching prefix.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(message({ type: "heartbeatResp", from: this.id, to: m.from, term: this.term, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (s.index <= this.log.committed) {
      this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term, index: this.log.committed }));
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // Our log already holds the snapshot point: just fast-forward the commit.
      this.log.commitTo(s.index);
      this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term, index: this.log.lastIndex() }));
      return;
    }
    this.logf("info", `${this.id} restoring snapshot at ${s.index} term ${s.term}`);
    this.log.restore({ index: s.index, term: s.term, config: cloneConfig(s.config) });
    this.setConfig(cloneConfig(s.config));
    this.send(message({ type: "appResp", from: this.id, to: m.from, term: this.term, index: s.index }));
  }

  // ---------------------------------------------------------------- leader

  private appendEntries(es: Entry[]): void {
    let index = this.log.lastIndex();
    for (const e of es) {
      e.index = ++index;
      e.term = this.term;
    }
    this.log.append(es);
    const self = this.prs.get(this.id);
    if (self) self.maybeUpdate(this.log.lastIndex());
    this.maybeCommit();
  }

  private maybeCommit(): boolean {
    const ci = committedIndex(this.config, (id) => this.prs.get(id)?.match ?? 0);
    if (ci <= this.log.committed) return false;
    const t = this.log.termOrUndefined(ci);
    if (t !== this.term && !this.bugs.commitOldTerm) return false;
    if (t === undefined) return false;
    this.log.commitTo(ci);
    return true;
  }

  private committedInTerm(): boolean {
    return this.log.termOrUndefined(this.log.committed) === this.term;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private bcastHeartbeat(ctx: string): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.send(
        message({
          type: "heartbeat",
          from: this.id,
          to: id,
          term: this.term,
          commit: Math.min(pr.match, this.log.committed),
          context: ctx,
        }),
      );
    }
  }

  /** Send what `to` needs next; returns whether a message was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prev = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prev);
      ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxSizePerMsg);
    } catch (e) {
      if (e instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entrySize(e);
    this.send(
      message({
        type: "app",
        from: this.id,
        to,
        term: this.term,
        index: prev,
        logTerm: prevTerm,
        entries: ents,
        commit: this.log.committed,
      }),
    );
    pr.sentEntries(prev + ents.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const meta = this.log.storage.snapshotMeta();
    assert(meta.index >= this.log.firstIndex() - 1, "storage compacted past its newest snapshot");
    this.logf("info", `${this.id} asks to send snapshot ${meta.index} to ${to} (next ${pr.next})`);
    pr.becomeSnapshot(meta.index);
    this.send(
      message({
        type: "snap",
        from: this.id,
        to,
        term: this.term,
        snapshot: { index: meta.index, term: meta.term, config: cloneConfig(meta.config) },
      }),
    );
    return true;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: "timeoutNow", from: this.id, to, term: this.term }));
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    switch (m.type) {
      case "appResp": {
        if (!pr) return;
        // A claim to hold entries we never sent is garbage; counting it could commit unreplicated entries.
        if (!m.reject && m.index > this.log.lastIndex()) return;
        pr.recentActive = true;
        pr.lastHeardTick = this.ticks;
        if (m.reject) {
          let next = m.rejectHint;
          if (m.logTerm > 0) next = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, next)) {
            if (pr.state === "replicate") pr.becomeProbe();
            this.sendAppend(m.from, true);
          }
          return;
        }
        const wasPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === "probe") pr.becomeReplicate();
          else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
          if (this.maybeCommit()) this.bcastAppend();
          else if (wasPaused) this.sendAppend(m.from, true);
          while (this.prs.get(m.from) === pr && this.sendAppend(m.from, false)) {
            // fill the in-flight window
          }
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
          this.maybePromote(m.from, pr);
        } else if (pr.state === "replicate") {
          pr.inflights.freeLE(m.index);
        }
        return;
      }
      case "heartbeatResp": {
        if (!pr) return;
        pr.recentActive = true;
        pr.lastHeardTick = this.ticks;
        pr.probeSent = false;
        if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
        if (m.context !== "") {
          const done = this.reads.ack(m.context, m.from, (acks) => {
            const vs = voters(this.config);
            let n = 0;
            for (const v of vs) if (acks.has(v)) n++;
            return n >= quorum(vs.length);
          });
          for (const round of done) for (const r of round.reads) this.releaseRead(r, round.index);
        }
        return;
      }
      case "readIndex":
        this.queueRead({ ctx: m.context, from: m.from });
        return;
      case "transferLeader":
        this.transferLeadership(m.context);
        return;
      default:
        return;
    }
  }

  private maybePromote(id: NodeId, pr: Progress): void {
    if (!this.promoteWhenCaughtUp.has(id) || pr.match < this.log.committed) return;
    if (this.pendingConfIndex > this.log.applied || this.leadTransferee !== NONE) return;
    const s = this.config.servers.find((x) => x.id === id);
    if (!s || s.voter) {
      this.promoteWhenCaughtUp.delete(id);
      return;
    }
    this.logf("info", `${this.id} promotes caught-up non-voter ${id}`);
    try {
      this.proposeConfChange({ type: "promote", id });
    } catch (e) {
      // Refused (e.g. uncommitted bytes limit): retried on the next answer from this follower.
      this.logf("debug", `${this.id} could not promote ${id}: ${(e as Error).message}`);
    }
  }

  private releaseRead(r: ReadRequest, index: number): void {
    if (r.from === this.id) this.readStates.push({ ctx: r.ctx, index });
    else this.send(message({ type: "readIndexResp", from: this.id, to: r.from, term: this.term, index, context: r.ctx }));
  }

  private queueRead(r: ReadRequest): void {
    if (this.reads.size() >= MAX_PENDING_READS) {
      this.logf("warn", `${this.id} dropped read ${r.ctx}: too many pending reads`);
      return;
    }
    this.reads.queued.push(r);
  }

  /** Work deferred to the Ready boundary: one broadcast for all proposals, one quorum round for all reads. */
  flushPending(): void {
    if (this.state !== "leader") return;
    if (this.broadcastPending) {
      this.broadcastPending = false;
      this.bcastAppend();
    }
    if (this.reads.queued.length > 0 && this.committedInTerm()) {
      const single = voters(this.config).length === 1 && isVoter(this.config, this.id);
      if (single || this.bugs.readWithoutQuorum) {
        const reads = this.reads.queued;
        this.reads.queued = [];
        for (const r of reads) this.releaseRead(r, this.log.committed);
      } else {
        const round = this.reads.startRound(this.term, this.log.committed, this.id);
        this.bcastHeartbeat(round.id);
      }
    }
  }

  hasPendingFlush(): boolean {
    return this.state === "leader" && (this.broadcastPending || (this.reads.queued.length > 0 && this.committedInTerm()));
  }

  // ---------------------------------------------------------------- requests from the driver

  propose(data: Uint8Array, type: EntryType = EntryType.Normal): { index: number; term: number } {
    if (this.state !== "leader") throw new NotLeaderError(this.lead);
    if (this.leadTransferee !== NONE)
      throw new ProposalDroppedError("transfer", `leadership transfer to ${this.leadTransferee} in progress`);
    if (!isVoter(this.config, this.id) && this.config.servers.some((s) => s.id === this.id)) {
      throw new ProposalDroppedError("not-voter", "this server is no longer a voter");
    }
    const e: Entry = { index: 0, term: 0, type, data };
    const size = entrySize(e);
    if (size > this.maxSizePerMsg)
      throw new ProposalDroppedError("too-large", `entry of ${size} bytes exceeds the maximum message size ${this.maxSizePerMsg}`);
    if (this.maxUncommittedBytes > 0 && this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommittedBytes) {
      throw new ProposalDroppedError("uncommitted", `uncommitted log exceeds ${this.maxUncommittedBytes} bytes`);
    }
    this.uncommittedSize += size;
    this.appendEntries([e]);
    this.broadcastPending = true;
    return { index: e.index, term: e.term };
  }

  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    if (this.state !== "leader") throw new NotLeaderError(this.lead);
    if (this.pendingConfIndex > this.log.applied) {
      throw new ConfChangeError(`the change at index ${this.pendingConfIndex} is not applied yet`);
    }
    let change = cc;
    if (cc.type === "addVoter" && !this.config.servers.some((s) => s.id === cc.id)) {
      // A new server catches up as a non-voter first; it is promoted once its log matches the commit index.
      change = { type: "addNonvoter", id: cc.id, address: cc.address };
    }
    const next = applyChange(this.config, change);
    const data = encodeConfChange({ change: cc, config: next });
    const r = this.propose(data, EntryType.ConfChange);
    this.pendingConfIndex = r.index;
    return r;
  }

  readIndex(ctx: string): void {
    if (this.state === "leader") {
      this.queueRead({ ctx, from: this.id });
      return;
    }
    if (this.lead === NONE) throw new NotLeaderError(NONE);
    this.send(message({ type: "readIndex", from: this.id, to: this.lead, term: this.term, context: ctx }));
  }

  transferLeadership(to: NodeId): void {
    if (this.state !== "leader") {
      if (this.lead === NONE) throw new NotLeaderError(NONE);
      this.send(message({ type: "transferLeader", from: this.id, to: this.lead, term: this.term, context: to }));
      return;
    }
    if (to === this.id || !isVoter(this.config, to)) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    const pr = this.prs.get(to);
    if (!pr) return;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.prs.get(to);
    if (this.state !== "leader" || !pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    pr.probeSent = true;
  }

  reportUnreachable(to: NodeId): void {
    const pr = this.prs.get(to);
    if (this.state === "leader" && pr && pr.state === "replicate") pr.becomeProbe();
  }

  /** Send `to` the current snapshot regardless of its log (restore: followers must drop their old state). */
  forceSnapshot(to: NodeId): void {
    const pr = this.prs.get(to);
    if (this.state !== "leader" || !pr || to === this.id) return;
    pr.recentActive = true;
    this.sendSnapshot(to, pr);
  }

  // ---------------------------------------------------------------- configuration

  /** Called when a ConfChange entry is applied (RawNode.advance), and on restart for applied entries. */
  applyConfEntry(e: Entry): Configuration {
    const rec = decodeConfChange(e.data);
    const cc = rec.change;
    if (cc.type === "addVoter") {
      const s = rec.config.servers.find((x) => x.id === cc.id);
      if (s && !s.voter) this.promoteWhenCaughtUp.add(cc.id);
    } else if (cc.type === "promote" || cc.type === "remove") {
      this.promoteWhenCaughtUp.delete(cc.id);
    }
    this.setConfig(rec.config);
    return rec.config;
  }

  private setConfig(c: Configuration): void {
    this.config = c;
    for (const id of this.promoteWhenCaughtUp) if (!c.servers.some((s) => s.id === id && !s.voter)) this.promoteWhenCaughtUp.delete(id);
    if (this.state !== "leader") return;
    if (!isVoter(c, this.id)) {
      this.logf("info", `${this.id} is no longer a voter: stepping down`);
      this.becomeFollower(this.term, NONE);
      return;
    }
    const last = this.log.lastIndex();
    for (const s of c.servers) {
      if (!this.prs.has(s.id)) {
        const pr = new Progress(last + 1, this.maxInflightMsgs, this.maxInflightBytes);
        pr.recentActive = true;
        pr.lastHeardTick = this.ticks;
        this.prs.set(s.id, pr);
      }
    }
    for (const id of [...this.prs.keys()]) if (!c.servers.some((s) => s.id === id)) this.prs.delete(id);
    if (this.leadTransferee !== NONE && !isVoter(c, this.leadTransferee)) this.leadTransferee = NONE;
    if (this.maybeCommit()) this.bcastAppend();
    else this.broadcastPending = true;
  }
}
