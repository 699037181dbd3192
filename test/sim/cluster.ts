// A deterministic simulation of a whole raft cluster in one process: RawNodes
// over in-memory storage or the real Wal on a simulated disk (durable_store.ts), and a seeded network (delay, loss,
// duplication, // reordering, partitions), with crashes that lose what was not persisted,
// compaction and snapshot streaming, membership changes, leadership transfers,
// client writes and ReadIndex reads. The Checker runs after every step.
import { decodeConfChange } from "../../src/raft/membership.ts";
import type { Message } from "../../src/raft/message.ts";
import { RawNode } from "../../src/raft/raw_node.ts";
import type { RaftBugs, Ready } from "../../src/raft/raw_node.ts";
import { EntryType } from "../../src/raft/storage.ts";
import type { Configuration } from "../../src/raft/storage.ts";
import { Checker, chainHash, entrySig } from "./checker.ts";
import { type DiskMode, type DurableStore, openStore } from "./durable_store.ts";
import { seeded } from "./rng.ts";

export interface SimOptions {
  seed: number;
  /** Simulated ticks of faults and load, before the final healing phase. */
  steps: number;
  /** Initial voters; chosen by the seed (3 or 5) when absent. */
  servers?: number;
  bugs?: RaftBugs;
  /** Test-only driver bug: the vote is not persisted, so a restart forgets it. */
  forgetVoteOnRestart?: boolean;
  /** Keep the last events for a failure report. */
  trace?: boolean;
  /** Where each server keeps its log and hard state: MemStorage ("mem", default) or the real Wal on a SimDisk ("sim"). */
  disk?: DiskMode;
  /** Test-only driver bug: a Ready's messages go out before its entries and hard state are durable. */
  sendBeforePersist?: boolean;
}

export interface SimResult {
  seed: number;
  steps: number;
  violations: string[];
  stats: {
    acked: number;
    reads: number;
    elections: number;
    snapshots: number;
    confChanges: number;
    crashes: number;
    commit: number;
    /** Disk mode: crashes at a pending sync of a write, and torn log tails cut when reopening. */
    midWriteCrashes: number;
    tornTails: number;
  };
  trace: string[];
  profile: string;
}

interface SimNode {
  id: string;
  store: DurableStore;
  raw: RawNode | null;
  /** State machine: applied index and chained hash of everything applied. */
  applied: number;
  hash: number;
  /** Hash of the state at storage.snapshot.index (the "snapshot file"). */
  snapHash: number;
  /** Snapshot files received, by "index:term", not yet installed (several while a Ready waits). */
  incoming: Map<string, number>;
  restartAt: number;
  /** A Ready taken and not yet persisted/advanced (asynchronous persistence). */
  pendingReady: { rd: Ready; term: number } | null;
  /** Paused (like SIGSTOP) until this tick: no ticks, no processing; messages wait in its socket. */
  pausedUntil: number;
  /** A leader scheduled to crash soon after its election (Figure 8 style churn). */
  crashAt: number;
  stopAt: number;
  stopped: boolean;
  tornNextReady: boolean;
  reads: Map<string, { floor: number; index: number }>;
  proposals: Map<number, { term: number; sig: number }>;
  seq: number;
}

interface InFlight {
  at: number;
  m: Message;
  /** For a snapshot stream: the state hash it carries. */
  snapHash?: number;
}

const ELECTION = 10;
const HEARTBEAT = 2;

export function runSeed(opts: SimOptions): Promise<SimResult> {
  return new Sim(opts).run();
}

export class Sim {
  private readonly rng: () => number;
  now = 0;
  private readonly checker: Checker;
  nodes = new Map<string, SimNode>();
  private net: InFlight[] = [];
  private blocked = new Set<string>();
  private healAt = 0;
  private loss = 0;
  private dup = 0;
  private maxDelay = 2;
  private nextId = 1;
  /** The newest configuration any server applied (committed, so one history). */
  private latestConf: { index: number; config: Configuration } = { index: 0, config: { servers: [] } };
  private opSeq = 0;
  private readSeq = 0;
  private faults = true;
  /** Per-seed profile, so the seeds cover calm and stormy runs and both protocol option settings. */
  private readonly profile: {
    checkQuorum: boolean;
    preVote: boolean;
    maxSizePerMsg: number;
    crashRate: number;
    fastRestart: number;
    leaderChurn: number;
    voterCrash: number;
    asyncReady: number;
  };
  private readonly traceBuf: string[] = [];
  stats = { acked: 0, reads: 0, elections: 0, snapshots: 0, confChanges: 0, crashes: 0, commit: 0, midWriteCrashes: 0, tornTails: 0 };
  private readonly initial: { ids: string[]; config: Configuration };

  constructor(private readonly opts: SimOptions) {
    if (opts.disk === "sim" && opts.forgetVoteOnRestart)
      throw new Error("forgetVoteOnRestart is a memory-mode variant: the stable store refuses to drop a vote within its term");
    this.rng = seeded(opts.seed);
    this.checker = new Checker(() => this.now);
    const n = opts.servers ?? (this.rng() < 0.5 ? 3 : 5);
    this.profile = {
      checkQuorum: this.rng() < 0.75,
      preVote: this.rng() < 0.75,
      maxSizePerMsg: this.pick([64, 256, 1024, 8192])!,
      crashRate: this.pick([0.003, 0.006, 0.02])!,
      fastRestart: this.pick([0, 0.3, 0.6])!,
      leaderChurn: this.pick([0, 0, 0.3, 0.6])!,
      voterCrash: this.pick([0, 0.1, 0.3])!,
      asyncReady: this.pick([0, 0.2, 0.5])!,
    };
    const ids = Array.from({ length: n }, () => `n${this.nextId++}`);
    const config: Configuration = { servers: ids.map((id) => ({ id, address: `${id}:7000`, voter: true })) };
    this.initial = { ids, config };
    this.latestConf = { index: 0, config };
  }

  private trace(s: string): void {
    if (!this.opts.trace) return;
    this.traceBuf.push(`t=${this.now} ${s}`);
    if (this.traceBuf.length > 400) this.traceBuf.splice(0, 100);
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rng() * xs.length)];
  }

  private async addNode(id: string, config: Configuration): Promise<SimNode> {
    const node: SimNode = {
      id,
      store: await openStore(this.opts.disk ?? "mem", id, config, this.rng),
      raw: null,
      applied: 0,
      hash: 0,
      snapHash: 0,
      incoming: new Map(),
      restartAt: 0,
      crashAt: 0,
      pausedUntil: 0,
      pendingReady: null,
      stopAt: 0,
      stopped: false,
      tornNextReady: false,
      reads: new Map(),
      proposals: new Map(),
      seq: Math.floor(this.rng() * 1e9),
    };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  private start(node: SimNode): void {
    node.applied = node.store.snapshot().index;
    node.hash = node.snapHash;
    node.reads.clear();
    node.proposals.clear();
    node.tornNextReady = false;
    node.crashAt = 0;
    node.pendingReady = null;
    node.raw = new RawNode({
      id: node.id,
      storage: node.store.log,
      electionTick: ELECTION,
      heartbeatTick: HEARTBEAT,
      random: seeded(node.seq++),
      applied: node.applied,
      maxSizePerMsg: this.profile.maxSizePerMsg,
      checkQuorum: this.profile.checkQuorum,
      preVote: this.profile.preVote,
      maxInflightMsgs: 8,
      maxUncommittedBytes: 1 << 16,
    });
    if (this.opts.bugs) node.raw.setBugs(this.opts.bugs);
  }

  /** The process dies; with `midWrite` the store already crashed inside a write. */
  private async crash(node: SimNode, why: string, midWrite = false): Promise<void> {
    if (!node.raw) return;
    this.trace(`crash ${node.id} (${why})`);
    node.raw = null;
    node.pendingReady = null;
    this.stats.crashes++;
    if (!midWrite) await node.store.crash();
    node.restartAt =
      this.now + (this.rng() < this.profile.fastRestart ? 1 + Math.floor(this.rng() * 3) : 10 + Math.floor(this.rng() * 150));
  }

  private restart(node: SimNode): void {
    this.trace(`restart ${node.id}`);
    if (this.opts.forgetVoteOnRestart) node.store.forgetVote();
    this.start(node);
  }

  private live(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.raw && !n.stopped) out.push(n);
    return out;
  }

  /** Live and not paused: those that run this tick. */
  private running(): SimNode[] {
    return this.live().filter((n) => n.pausedUntil <= this.now);
  }

  private leaders(): SimNode[] {
    return this.running().filter((n) => n.raw!.status().state === "leader");
  }

  // ---------------------------------------------------------------- network

  private link(from: string, to: string): boolean {
    return !this.blocked.has(`${from}>${to}`);
  }

  private send(m: Message, from: SimNode): void {
    if (m.type === "snap") {
      // The driver streams the snapshot file; the receiver's core sees the message only when it all arrived.
      // It streams the snapshot it has now, which may be newer than the one the core named: the
      // message the receiver steps then carries that snapshot's meta.
      this.stats.snapshots++;
      const snap = from.store.snapshot();
      const sm = { ...m, snapshot: { index: snap.index, term: snap.term, config: structuredClone(snap.config) } };
      this.net.push({ at: this.now + 2 + Math.floor(this.rng() * 10), m: sm, snapHash: from.snapHash });
      return;
    }
    if (this.rng() < this.loss) return;
    const copies = this.rng() < this.dup ? 2 : 1;
    for (let k = 0; k < copies; k++) this.net.push({ at: this.now + 1 + Math.floor(this.rng() * this.maxDelay), m });
  }

  private deliver(): void {
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.net) (f.at <= this.now ? due : rest).push(f);
    this.net = rest;
    for (const f of due) {
      const to = this.nodes.get(f.m.to);
      if (to?.raw && to.pausedUntil > this.now) {
        this.net.push({ ...f, at: to.pausedUntil });
        continue;
      }
      const ok = to !== undefined && to.raw !== null && !to.stopped && this.link(f.m.from, f.m.to);
      if (f.snapHash !== undefined) {
        const sender = this.nodes.get(f.m.from);
        const lost = !ok || this.rng() < this.loss;
        if (!lost) {
          const sm = f.m.snapshot!;
          to!.incoming.set(`${sm.index}:${sm.term}`, f.snapHash);
          to!.raw!.step(f.m);
          this.trace(`snapshot ${f.m.snapshot?.index} ${f.m.from}->${f.m.to} delivered`);
        }
        if (sender?.raw) sender.raw.reportSnapshot(f.m.to, !lost);
        continue;
      }
      if (!ok) continue;
      to!.raw!.step(f.m);
    }
  }

  // ---------------------------------------------------------------- driver

  private async handleReady(node: SimNode, rd: Ready, st: { term: number }): Promise<void> {
    node.pendingReady = null;
    const c = this.checker;
    const s = node.store;
    const prevVote = s.hardState().vote;
    const torn = node.tornNextReady ? Math.floor(this.rng() * 3) : -1;
    if (rd.softState?.state === "leader") {
      this.stats.elections++;
      c.leader(st.term, node.id);
      this.trace(`${node.id} leader term ${st.term}`);
      if (this.faults && this.rng() < this.profile.leaderChurn) node.crashAt = this.now + 1 + Math.floor(this.rng() * 4);
    }
    if (this.opts.sendBeforePersist) for (const m of rd.messages) this.send(m, node);
    if (rd.snapshot) {
      const snap = rd.snapshot;
      const key = `${snap.index}:${snap.term}`;
      const h = node.incoming.get(key);
      if (h === undefined) throw new Error(`${node.id} must install snapshot ${key} it never received`);
      if (!(await s.write((log) => log.installSnapshot(snap), torn === 0))) {
        // The snapshot file was stored before the install began: if the install survived the crash,
        // the state the restart loads is this snapshot's.
        if (s.snapshot().index === snap.index && s.snapshot().term === snap.term) node.snapHash = h;
        return this.crash(node, "torn ready during snapshot install", true);
      }
      // Only files this install supersedes go: a newer one can arrive (and be stepped, replacing the
      // core's unstable snapshot) while this Ready waits, and the next Ready installs that one.
      for (const k of node.incoming.keys()) if (Number(k.split(":")[0]) <= snap.index) node.incoming.delete(k);
      this.trace(`${node.id} installed snapshot ${key}`);
      node.snapHash = h;
      node.applied = snap.index;
      node.hash = h;
      c.snapshot(node.id, snap.index, node.hash);
      c.committed(node.id, snap.index, snap.term, rd.hardState?.term ?? st.term);
    }
    if (rd.entries.length > 0) {
      if (!(await s.write((log) => log.append(rd.entries), torn === 0))) return this.crash(node, "torn ready during entries", true);
      for (const e of rd.entries) c.persist(node.id, e, s.log.term(e.index - 1));
    }
    if (rd.hardState) {
      const hs = rd.hardState;
      const prev = s.hardState();
      if (!(await s.write((log) => log.setHardState(hs), torn === 1))) return this.crash(node, "torn ready during hard state", true);
      if (hs.commit < prev.commit) c.fail(`commit moved back on ${node.id}: ${prev.commit} -> ${hs.commit}`);
      if (hs.term < prev.term) c.fail(`term moved back on ${node.id}`);
      for (let i = Math.max(prev.commit + 1, s.log.firstIndex()); i <= hs.commit; i++) c.committed(node.id, i, s.log.term(i), hs.term);
      if (hs.commit > this.stats.commit) this.stats.commit = hs.commit;
    } else if (torn === 1) return this.crash(node, "torn ready before hard state");
    if (rd.softState?.state === "leader")
      c.leaderCompleteness(node.id, st.term, s.log.firstIndex(), s.log.lastIndex(), (i) => s.log.term(i));
    if (torn === 2) return this.crash(node, "torn ready before send");
    if (!this.opts.sendBeforePersist) for (const m of rd.messages) this.send(m, node);
    const raw = node.raw!;
    const votedNow =
      rd.hardState !== undefined && rd.hardState.vote !== "" && rd.hardState.vote !== node.id && rd.hardState.vote !== prevVote;
    if (votedNow && this.faults && this.rng() < this.profile.voterCrash) {
      // Crash right after granting a vote, and come back at once: the vote must survive.
      await this.crash(node, "after voting");
      node.restartAt = this.now + 1;
      return;
    }
    for (const e of rd.committedEntries) {
      if (e.index <= node.applied) continue;
      if (e.index !== node.applied + 1) {
        c.fail(`${node.id} applied ${e.index} after ${node.applied}`);
        continue;
      }
      const sig = entrySig(e);
      node.hash = chainHash(node.hash, sig);
      node.applied = e.index;
      c.apply(node.id, e.index, sig, node.hash);
      const p = node.proposals.get(e.index);
      if (p) {
        node.proposals.delete(e.index);
        if (p.term === e.term && p.sig === sig) {
          c.ack(e.index);
          this.stats.acked++;
        }
      }
      if (e.type === EntryType.ConfChange) this.onConfApplied(e.index, e.data);
    }
    for (const r of rd.readStates) {
      const pending = node.reads.get(r.ctx);
      if (pending) pending.index = r.index;
    }
    raw.advance(rd);
    for (const [ctx, r] of node.reads) {
      if (r.index >= 0 && node.applied >= r.index) {
        node.reads.delete(ctx);
        c.readDone(node.id, ctx, r.floor, r.index, node.applied);
        this.stats.reads++;
      }
    }
  }

  private onConfApplied(index: number, data: Uint8Array): void {
    const rec = decodeConfChange(data);
    if (index > this.latestConf.index) this.latestConf = { index, config: rec.config };
    if (rec.change.type !== "remove") return;
    const gone = this.nodes.get(rec.change.id);
    if (gone && gone.stopAt === 0) gone.stopAt = this.now + 30;
  }

  private async processReadies(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.pausedUntil > this.now) continue;
      if (!n.raw || n.stopped) continue;
      if (n.pendingReady) await this.handleReady(n, n.pendingReady.rd, n.pendingReady);
      for (let k = 0; k < 8 && n.raw && !n.stopped && n.raw.hasReady(); k++) {
        const rd = n.raw.ready();
        const term = n.raw.status().term;
        if (this.faults && this.rng() < this.profile.asyncReady) {
          // Persist this batch "slowly": messages and ticks reach the core before advance().
          n.pendingReady = { rd, term };
          break;
        }
        await this.handleReady(n, rd, { term });
      }
    }
  }

  // ---------------------------------------------------------------- load and faults

  private propose(): void {
    const n = this.pick(this.running());
    if (!n) return;
    let target = n;
    const lead = n.raw!.status().lead;
    const ln = this.nodes.get(lead);
    if (ln?.raw && !ln.stopped && ln.pausedUntil <= this.now) target = ln; // forwarding to the leader, as the server does
    const count = 1 + Math.floor(this.rng() * 3);
    for (let k = 0; k < count; k++) {
      const op = ++this.opSeq;
      const data = new Uint8Array(4 + Math.floor(this.rng() * 8));
      new DataView(data.buffer).setUint32(0, op);
      try {
        const { index, term } = target.raw!.propose(data);
        target.proposals.set(index, { term, sig: entrySig({ index, term, type: EntryType.Normal, data }) });
      } catch {
        return; // not leader / dropped: the client retries elsewhere
      }
    }
  }

  private read(): void {
    const n = this.pick(this.running());
    if (!n) return;
    const ctx = `r${++this.readSeq}`;
    const floor = this.checker.readFloor();
    try {
      n.raw!.readIndex(ctx);
      n.reads.set(ctx, { floor, index: -1 });
    } catch {
      // no leader known
    }
  }

  private partition(): void {
    const ids = this.live().map((n) => n.id);
    const all = [...this.nodes.keys()];
    this.blocked.clear();
    const kind = Math.floor(this.rng() * 4);
    const block = (a: string, b: string) => this.blocked.add(`${a}>${b}`);
    if (kind === 0) {
      // symmetric split into two random groups
      const side = new Map(all.map((id) => [id, this.rng() < 0.5]));
      for (const a of all) for (const b of all) if (side.get(a) !== side.get(b)) block(a, b);
      this.trace(`partition split ${all.filter((id) => side.get(id)).join(",")}`);
    } else if (kind === 1) {
      // one-way: a random set of directed links
      for (const a of all) for (const b of all) if (a !== b && this.rng() < 0.3) block(a, b);
      this.trace(`partition one-way ${[...this.blocked].join(" ")}`);
    } else if (kind === 2) {
      // bridge: two groups that only one server connects
      const bridge = this.pick(all)!;
      const side = new Map(all.map((id) => [id, this.rng() < 0.5]));
      for (const a of all) for (const b of all) if (a !== bridge && b !== bridge && side.get(a) !== side.get(b)) block(a, b);
      this.trace(`partition bridge via ${bridge}`);
    } else {
      // isolate the leader (or a random server)
      const victim = this.leaders()[0]?.id ?? this.pick(ids);
      if (victim) {
        for (const b of all) {
          if (b === victim) continue;
          block(victim, b);
          block(b, victim);
        }
      }
      this.trace(`partition isolate ${victim}`);
    }
    this.healAt = this.now + 20 + Math.floor(this.rng() * 200);
  }

  private async confChange(): Promise<void> {
    const leader = this.leaders()[0];
    if (!leader) return;
    const cfg = leader.raw!.status().config;
    const voters = cfg.servers.filter((s) => s.voter);
    const nonvoters = cfg.servers.filter((s) => !s.voter);
    try {
      if (nonvoters.length === 0 && voters.length < 5 && this.rng() < 0.5) {
        const id = `n${this.nextId++}`;
        await this.addNode(id, { servers: [] });
        leader.raw!.proposeConfChange({ type: "addVoter", id, address: `${id}:7000` });
        this.trace(`propose addVoter ${id}`);
      } else if (voters.length > 3 || nonvoters.length > 0) {
        const victim = this.pick(nonvoters.length > 0 && this.rng() < 0.5 ? nonvoters : voters)!;
        if (voters.length <= 3 && victim.voter) return;
        leader.raw!.proposeConfChange({ type: "remove", id: victim.id });
        this.trace(`propose remove ${victim.id}`);
      } else return;
      this.stats.confChanges++;
    } catch {
      // one change at a time: refused while another is pending
    }
  }

  private async chaos(): Promise<void> {
    const r = this.rng;
    if (this.healAt > 0 && this.now >= this.healAt) {
      this.blocked.clear();
      this.healAt = 0;
      this.trace("heal");
    }
    if (r() < 0.004 && this.healAt === 0) this.partition();
    if (r() < 0.01) {
      this.loss = this.pick([0, 0, 0.01, 0.05, 0.2])!;
      this.dup = this.pick([0, 0, 0.02, 0.1])!;
      this.maxDelay = this.pick([1, 2, 3, 6, 12])!;
    }
    if (r() < this.profile.crashRate) {
      const live = this.live();
      const down = [...this.nodes.values()].filter((n) => !n.raw && !n.stopped).length;
      const victim = r() < 0.4 ? (this.leaders()[0] ?? this.pick(live)) : this.pick(live);
      if (victim && down < 2) {
        // On the simulated disk a torn Ready crashes inside a write (at a sync), the case worth most there.
        if (r() < (this.opts.disk === "sim" ? 0.6 : 0.3)) victim.tornNextReady = true;
        else await this.crash(victim, "kill");
      }
    }
    if (r() < 0.004) {
      // Pause a server (often the leader), as SIGSTOP or a long GC would: it wakes up with stale beliefs.
      const victim = r() < 0.5 ? (this.leaders()[0] ?? this.pick(this.live())) : this.pick(this.live());
      if (victim && victim.pausedUntil <= this.now) {
        victim.pausedUntil = this.now + 5 + Math.floor(r() * 60);
        this.trace(`pause ${victim.id} until ${victim.pausedUntil}`);
      }
    }
    if (r() < 0.003) await this.confChange();
    if (r() < 0.003) {
      const leader = this.leaders()[0];
      const to = leader && this.pick(leader.raw!.status().config.servers.filter((s) => s.voter && s.id !== leader.id));
      if (leader && to) {
        this.trace(`transfer ${leader.id} -> ${to.id}`);
        leader.raw!.transferLeadership(to.id);
      }
    }
  }

  private async compact(): Promise<void> {
    for (const n of this.running()) {
      if (this.rng() > 0.03) continue;
      const s = n.store.log;
      if (n.applied - s.snapshotMeta().index < 20 || n.applied > s.lastIndex()) continue;
      const meta = { index: n.applied, term: s.term(n.applied), config: structuredClone(n.raw!.status().config) };
      const upTo = Math.max(s.firstIndex() - 1, n.applied - Math.floor(this.rng() * 12));
      await n.store.write(async (log) => {
        await log.setSnapshot(meta);
        await log.compact(upTo);
      }, false);
      n.snapHash = n.hash;
    }
  }

  private stopRemoved(): void {
    for (const n of this.nodes.values()) {
      if (n.stopAt > 0 && this.now >= n.stopAt && !n.stopped) {
        n.stopped = true;
        n.raw = null;
        this.trace(`stop removed ${n.id}`);
      }
    }
  }

  private checkElectable(): void {
    // Quorums of the newest committed configuration: with one change at a time they intersect the
    // quorum that committed the newest entry.
    const voters = this.latestConf.config.servers.filter((x) => x.voter).map((x) => x.id);
    const logs = voters.map((id) => {
      const s = this.nodes.get(id)!.store.log;
      const last = s.lastIndex();
      return {
        id,
        lastIndex: last,
        lastTerm: s.term(last),
        has: (i: number, t: number) => i < s.firstIndex() - 1 || (i <= last && s.term(i) === t),
      };
    });
    this.checker.electable(logs);
  }

  async step(): Promise<void> {
    this.now++;
    for (const n of this.running()) n.raw!.tick();
    this.deliver();
    for (const n of this.nodes.values()) {
      if (!n.stopped && !n.raw && (this.now >= n.restartAt || !this.faults)) this.restart(n);
      else if (n.raw && n.crashAt > 0 && this.now >= n.crashAt) {
        n.crashAt = 0;
        if (this.faults) await this.crash(n, "leader churn");
      }
    }
    if (this.faults) await this.chaos();
    if (this.rng() < 0.5) this.propose();
    if (this.rng() < 0.2) this.read();
    await this.processReadies();
    this.checkElectable();
    await this.compact();
    this.stopRemoved();
  }

  /** Heal everything; then a leader must be elected and a write commit everywhere within a bound. */
  private async liveness(): Promise<void> {
    this.faults = false;
    this.blocked.clear();
    this.loss = 0;
    this.dup = 0;
    this.maxDelay = 2;
    for (const n of this.nodes.values()) {
      n.tornNextReady = false;
      n.pausedUntil = Math.min(n.pausedUntil, this.now);
    }
    const limit = 60 * ELECTION;
    const start = this.now;
    let marker = -1;
    while (this.now - start < limit) {
      await this.step();
      const leader = this.leaders()[0];
      if (!leader) continue;
      if (marker < 0) {
        try {
          marker = leader.raw!.propose(new Uint8Array([0xff, 0xff, 0xff, 0xff])).index;
          leader.proposals.set(marker, { term: leader.raw!.status().term, sig: -1 });
        } catch {
          continue;
        }
      }
      const target = Math.max(marker, this.checker.maxAckedIndex);
      const members = leader.raw!.status().config.servers.map((s) => this.nodes.get(s.id));
      if (members.every((m) => m?.raw && m.applied >= target)) return;
    }
    const st = this.live()
      .map((n) => `${n.id}:${n.raw!.status().state}/t${n.raw!.status().term}/a${n.applied}`)
      .join(" ");
    this.checker.fail(`liveness: no leader with a write applied by all members within ${limit} ticks after healing (${st})`);
  }

  async run(): Promise<SimResult> {
    try {
      for (const id of this.initial.ids) await this.addNode(id, this.initial.config);
      for (let i = 0; i < this.opts.steps && this.checker.violations.length === 0; i++) await this.step();
      if (this.checker.violations.length === 0) await this.liveness();
    } catch (e) {
      this.checker.fail(`exception: ${e instanceof Error ? e.stack?.split("\n").slice(0, 4).join(" | ") : String(e)}`);
    }
    for (const n of this.nodes.values()) {
      this.stats.midWriteCrashes += n.store.counters.midWriteCrashes;
      this.stats.tornTails += n.store.counters.tornTails;
    }
    const p = this.profile;
    const profile = `disk=${this.opts.disk ?? "mem"} checkQuorum=${p.checkQuorum} preVote=${p.preVote} maxSizePerMsg=${p.maxSizePerMsg} crashRate=${p.crashRate} fastRestart=${p.fastRestart} leaderChurn=${p.leaderChurn} voterCrash=${p.voterCrash} asyncReady=${p.asyncReady}`;
    return { seed: this.opts.seed, steps: this.now, violations: this.checker.violations, stats: this.stats, trace: this.traceBuf, profile };
  }
}
