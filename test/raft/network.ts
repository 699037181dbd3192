// A tiny synchronous cluster for unit tests: RawNodes over MemStorage, messages
// delivered in order by stabilize(), with filters to drop or isolate.
import { RawNode } from "../../src/raft/raw_node.ts";
import type { Message, RaftConfig, Ready } from "../../src/raft/raw_node.ts";
import type { Configuration } from "../../src/raft/storage.ts";
import { MemStorage } from "../sim/mem_storage.ts";
import { seeded } from "../sim/rng.ts";

export { seeded };

export function configOf(ids: string[], nonvoters: string[] = []): Configuration {
  return {
    servers: [
      ...ids.map((id) => ({ id, address: `${id}:1`, voter: true })),
      ...nonvoters.map((id) => ({ id, address: `${id}:1`, voter: false })),
    ],
  };
}

export interface TestNode {
  id: string;
  storage: MemStorage;
  raw: RawNode;
  applied: { index: number; term: number; data: Uint8Array }[];
  readStates: { ctx: string; index: number }[];
}

export class TestNet {
  nodes = new Map<string, TestNode>();
  /** Messages sent and not yet delivered. */
  queue: Message[] = [];
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  /** Every message ever sent (for assertions). */
  sent: Message[] = [];

  constructor(
    ids: string[],
    readonly opts: Partial<RaftConfig> = {},
    config: Configuration = configOf(ids),
  ) {
    for (const [k, id] of ids.entries()) this.add(id, new MemStorage(config), k + 1);
  }

  add(id: string, storage: MemStorage, seed: number): TestNode {
    const raw = new RawNode({
      id,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      random: seeded(seed * 7919),
      ...this.opts,
    });
    const n: TestNode = { id, storage, raw, applied: [], readStates: [] };
    this.nodes.set(id, n);
    return n;
  }

  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Handle every node's Ready once, queueing its messages. Returns whether anything happened. */
  processReadies(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      while (n.raw.hasReady()) {
        any = true;
        const rd: Ready = n.raw.ready();
        if (rd.snapshot) n.storage.installSnapshotSync(rd.snapshot);
        n.storage.appendSync(rd.entries);
        if (rd.hardState) n.storage.hardState = { ...rd.hardState };
        for (const m of rd.messages) {
          this.sent.push(m);
          this.queue.push(m);
        }
        for (const e of rd.committedEntries) n.applied.push({ index: e.index, term: e.term, data: e.data });
        n.readStates.push(...rd.readStates);
        n.raw.advance(rd);
      }
    }
    return any;
  }

  /** Deliver messages until nothing moves (bounded). */
  stabilize(limit = 10_000): void {
    for (let i = 0; i < limit; i++) {
      const moved = this.processReadies();
      if (this.queue.length === 0 && !moved) return;
      const q = this.queue;
      this.queue = [];
      for (const m of q) {
        const to = this.nodes.get(m.to);
        const ok = to !== undefined && this.filter(m);
        if (ok) to.raw.step(m);
        // A "snap" message is the driver's cue to stream the snapshot: here it arrives at once.
        if (m.type === "snap") this.nodes.get(m.from)?.raw.reportSnapshot(m.to, ok);
      }
    }
    throw new Error("stabilize: did not settle");
  }

  /** Take all queued messages out (after processing readies), for manual delivery. */
  drain(): Message[] {
    this.processReadies();
    const q = this.queue;
    this.queue = [];
    return q;
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const node of this.nodes.values()) node.raw.tick();
  }

  isolate(id: string): void {
    this.filter = (m) => m.from !== id && m.to !== id;
  }

  heal(): void {
    this.filter = () => true;
  }

  leader(): TestNode | undefined {
    for (const n of this.nodes.values()) if (n.raw.status().state === "leader") return n;
    return undefined;
  }

  elect(id: string): TestNode {
    this.node(id).raw.campaign();
    this.stabilize();
    const n = this.node(id);
    if (n.raw.status().state !== "leader") throw new Error(`${id} did not become leader`);
    return n;
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
