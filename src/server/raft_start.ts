// Starting raft on this server: once, from the newest intact snapshot and the log after it; founding
// a cluster by writing the same first entry on every bootstrapping server; and starting on the first
// message from a leader, for a server that joined a running cluster.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { assert } from "../lib/assert.ts";
import { encode } from "../lib/codec.ts";
import type { Logger } from "../lib/logger.ts";
import type { ConfChangeRecord } from "../raft/membership.ts";
import type { Message } from "../raft/message.ts";
import { RawNode } from "../raft/raw_node.ts";
import { type Configuration, EntryType, type NodeId } from "../raft/storage.ts";
import { SnapshotStore } from "../storage/snapshot_store.ts";
import { StableStore } from "../storage/stable_store.ts";
import { Wal } from "../storage/wal.ts";
import type { Fsm } from "./fsm.ts";
import type { Metrics } from "./metrics.ts";
import { reportOfflineNote } from "./offline_note.ts";
import { type DriverHooks, RaftDriver } from "./raft_driver.ts";

export const TICK_MS = 50;
const HEARTBEAT_TICKS = 2; // 100 ms
export const ELECTION_TICKS = 10; // 500–1000 ms randomized

/** The stores raft runs on, under data_dir (owner-only): ids, term and vote; the log; the snapshots. */
export async function openRaftStores(
  dataDir: string,
  logAt: (level: string, msg: string) => void,
): Promise<{ stable: StableStore; wal: Wal; snapshots: SnapshotStore }> {
  await mkdir(join(dataDir, "raft"), { recursive: true, mode: 0o700 });
  await mkdir(join(dataDir, "snapshots"), { recursive: true, mode: 0o700 });
  const stable = await StableStore.open(join(dataDir, "raft"));
  try {
    // This server's raft id, made on its first start and kept for good.
    if (!stable.get().nodeId) await stable.set({ nodeId: crypto.randomUUID() });
    const wal = await Wal.open(join(dataDir, "raft", "wal"), { stable, log: logAt });
    const snapshots = await SnapshotStore.open(join(dataDir, "snapshots"), { retain: 2, log: logAt });
    return { stable, wal, snapshots };
  } catch (e) {
    stable.close();
    throw e;
  }
}

export type BootstrapServer = { id: NodeId; address: string; voter: boolean };

/** What starting raft needs from the server. */
export interface RaftStartHost {
  readonly cfg: Config;
  readonly log: Logger;
  readonly stats: Metrics;
  readonly wal: Wal;
  readonly stable: StableStore;
  readonly snapshots: SnapshotStore;
  readonly fsm: Fsm;
  nodeId(): string;
  stopping(): boolean;
  logAt(level: string, msg: string): void;
  /** What the driver calls back into. */
  readonly hooks: DriverHooks;
  /** The state machine was loaded from the stored snapshot at `index` (before raft starts). */
  loadedSnapshot(index: number): void;
  /** Raft runs, with the configuration its log or snapshot holds. */
  started(config: Configuration): void;
}

export class RaftStart {
  node: RawNode | undefined;
  driver: RaftDriver | undefined;
  private starting: Promise<void> | undefined;
  private bootstrapping = false;
  private startingForPeer = false;

  constructor(private readonly host: RaftStartHost) {}

  /**
   * Starts raft once. Memoized: loading a large snapshot takes seconds, and a peer's message arriving
   * meanwhile (stepFromPeer) must not start a second RawNode and driver over the same log.
   */
  start(): Promise<void> {
    this.starting ??= this.startOnce().catch((e: unknown) => {
      this.starting = undefined;
      throw e;
    });
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    if (this.node) return;
    const { wal, stable, snapshots, fsm, log } = this.host;
    reportOfflineNote(this.host.cfg.data_dir, log, this.host.stats);
    // Recover the state machine from the newest intact snapshot, then replay the log after it.
    let applied = 0;
    const latest = snapshots.latest();
    if (latest) {
      const store = await fsm.loadFrom(snapshots.openReader(latest.id), latest.index);
      fsm.replaceStore(store);
      applied = latest.index;
      this.host.loadedSnapshot(latest.index);
      if (wal.snapshotMeta().index < latest.index) {
        const meta = { index: latest.index, term: latest.term, config: latest.config };
        if (latest.index <= wal.lastIndex() && wal.term(latest.index) === latest.term) {
          await wal.setSnapshot(meta);
        } else {
          // A snapshot from the leader whose install the log never recorded: the server stopped between
          // storing the file (receiveSnapshot, before raft sees the message) and the log's reset
          // (RaftDriver, after the state machine loaded it). It holds only committed entries, and the log
          // does not hold its last one: finish the install, discarding the log, as raft does on receiving
          // it (a log that does hold it keeps the entries after it, above).
          log.warn("finishing the install of a snapshot from the leader that a stop interrupted; the log before it is dropped", {
            index: latest.index,
            term: latest.term,
            log_last: wal.lastIndex(),
          });
          await wal.installSnapshot(meta);
        }
      }
      // A snapshot holds only committed entries, but the persisted commit index may lag it (the driver
      // writes a commit-only hard state after apply); the core requires applied <= commit.
      const hs = stable.get().hardState;
      if (hs.commit < latest.index) await wal.setHardState({ ...hs, commit: latest.index });
    }
    const node = new RawNode({
      id: this.host.nodeId(),
      storage: wal,
      electionTick: ELECTION_TICKS,
      heartbeatTick: HEARTBEAT_TICKS,
      random: Math.random,
      applied,
      preVote: true,
      checkQuorum: true,
      log: (level, msg) => this.host.logAt(level, msg),
    });
    this.node = node;
    this.driver = new RaftDriver(node, wal, this.host.hooks, TICK_MS * this.host.cfg.server.raft_multiplier, log, this.host.stats, applied);
    this.host.started(node.status().config);
    this.driver.start();
  }

  async bootstrap(servers: BootstrapServer[]): Promise<void> {
    if (this.node || this.startingForPeer || this.bootstrapping) return;
    assert(this.host.wal.lastIndex() === 0, "bootstrap only an empty log");
    this.bootstrapping = true;
    try {
      await this.bootstrapLog(servers);
    } finally {
      this.bootstrapping = false;
    }
  }

  private async bootstrapLog(servers: BootstrapServer[]): Promise<void> {
    const { wal, stable, log } = this.host;
    const config: Configuration = { servers: [...servers].sort((a, b) => a.id.localeCompare(b.id)) };
    const clusterId = await clusterIdOf(config);
    const first = config.servers[0]!;
    const rec: ConfChangeRecord = { change: { type: "addVoter", id: first.id, address: first.address }, config };
    // Every bootstrapping server writes the same first entry, so their logs agree at index 1.
    await wal.append([{ index: 1, term: 1, type: EntryType.ConfChange, data: encode(rec) }]);
    await wal.setHardState({ term: 1, vote: "", commit: 1 });
    await stable.set({ clusterId });
    log.info("bootstrapped cluster", { servers: config.servers.map((s) => s.address).join(","), cluster: clusterId });
    await this.start();
    // A lone server need not wait out an election timeout once it knows it is the only voter.
    // (A stop before that rejects the wait: nothing to campaign for then.)
    if (config.servers.length === 1)
      void this.driver?.waitApplied(1).then(
        () => this.node?.campaign(),
        () => {},
      );
  }

  /** A raft message from a peer: stepped, or, on a server that joined an existing cluster, the start of raft. */
  stepFromPeer(m: Message): void {
    if (!this.driver) {
      // A server that joined an existing cluster starts raft when the leader first contacts it.
      // While bootstrapping writes the first entry, raft must not start underneath it.
      if (this.host.stopping() || this.startingForPeer || this.bootstrapping) return;
      this.startingForPeer = true;
      void this.start()
        .then(() => this.driver?.step(m))
        .finally(() => {
          this.startingForPeer = false;
        });
      return;
    }
    this.driver.step(m);
  }
}

async function clusterIdOf(c: Configuration): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for (const s of c.servers) h.update(`${s.id}\n`);
  const hex = h.digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
