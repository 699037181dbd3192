// Committed entries per second through a 3-server cluster of RawNodes with
// in-memory storage and synchronous delivery (no I/O), for batches of 1 and 64
// proposals per Ready, and the heap in use after 1M entries with compaction on.
// Run: bun test/bench/raft.bench.ts
import { RawNode } from "../../src/raft/raw_node.ts";
import type { Message } from "../../src/raft/raw_node.ts";
import { MemStorage } from "../sim/mem_storage.ts";
import { seeded } from "../sim/rng.ts";

interface BenchNode {
  raw: RawNode;
  storage: MemStorage;
  applied: number;
}

function cluster(): Map<string, BenchNode> {
  const config = { servers: ["a", "b", "c"].map((id) => ({ id, address: id, voter: true })) };
  const nodes = new Map<string, BenchNode>();
  for (const [k, id] of ["a", "b", "c"].entries()) {
    const storage = new MemStorage(config);
    const raw = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, random: seeded(k + 1), maxInflightMsgs: 256 });
    nodes.set(id, { raw, storage, applied: 0 });
  }
  return nodes;
}

/** Process Readies and deliver messages until quiet. */
function settle(nodes: Map<string, BenchNode>): void {
  for (;;) {
    const out: Message[] = [];
    for (const n of nodes.values()) {
      while (n.raw.hasReady()) {
        const rd = n.raw.ready();
        if (rd.snapshot) n.storage.installSnapshotSync(rd.snapshot);
        n.storage.appendSync(rd.entries);
        if (rd.hardState) n.storage.hardState = rd.hardState;
        for (const m of rd.messages) out.push(m);
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last) n.applied = last.index;
        n.raw.advance(rd);
      }
    }
    if (out.length === 0) return;
    for (const m of out) nodes.get(m.to)!.raw.step(m);
  }
}

function compact(nodes: Map<string, BenchNode>, keep: number): void {
  for (const n of nodes.values()) {
    const s = n.storage;
    if (n.applied - s.snapshot.index < 10_000) continue;
    s.snapshot = { index: n.applied, term: s.term(n.applied), config: s.snapshot.config };
    s.compactSync(n.applied - keep);
  }
}

/** Entries committed (applied on every server) per second for `total` entries in batches of `batch`. */
function throughput(batch: number, total: number, compaction: boolean, keepAlive?: (nodes: Map<string, BenchNode>) => void): number {
  const nodes = cluster();
  const a = nodes.get("a")!;
  a.raw.campaign();
  settle(nodes);
  const payload = new Uint8Array(64);
  const start = a.applied;
  const t0 = performance.now();
  for (let sent = 0; sent < total; sent += batch) {
    for (let k = 0; k < batch; k++) a.raw.propose(payload);
    settle(nodes);
    if (compaction) compact(nodes, 1000);
  }
  const dt = (performance.now() - t0) / 1000;
  for (const n of nodes.values()) if (n.applied - start < total) throw new Error(`only ${n.applied - start} of ${total} committed`);
  keepAlive?.(nodes);
  return total / dt;
}

/** Baseline: the same number of entry objects created, pushed through three arrays and dropped, no raft. */
function baseline(total: number): number {
  const payload = new Uint8Array(64);
  const logs: { index: number; term: number; type: 0; data: Uint8Array }[][] = [[], [], []];
  const t0 = performance.now();
  for (let i = 1; i <= total; i++) {
    const e = { index: i, term: 1, type: 0 as const, data: payload };
    for (const l of logs) l.push(e);
    if (i % 10_000 === 0) for (const l of logs) l.length = 0;
  }
  return total / ((performance.now() - t0) / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

const RUNS = 3;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const rows: [string, number][] = [];
rows.push(["baseline: entry objects through 3 arrays, no raft", median(Array.from({ length: RUNS }, () => baseline(1_000_000)))]);
rows.push(["3 servers, batch 1", median(Array.from({ length: RUNS }, () => throughput(1, 30_000, false)))]);
rows.push(["3 servers, batch 64", median(Array.from({ length: RUNS }, () => throughput(64, 300_000, false)))]);

Bun.gc(true);
const heap0 = process.memoryUsage().heapUsed;
const t0 = performance.now();
let heap1 = 0;
let retained = 0;
const rate1m = throughput(64, 1_000_000, true, (nodes) => {
  // Measured while the cluster is still alive: what a running server would hold.
  Bun.gc(true);
  heap1 = process.memoryUsage().heapUsed;
  for (const n of nodes.values()) retained += n.storage.ents.length;
});
rows.push(["3 servers, batch 64, 1M entries, compaction on", rate1m]);

console.log(`| case | committed entries/s (median of ${RUNS}) |`);
console.log("|---|---:|");
for (const [name, v] of rows) console.log(`| ${name} | ${fmt(v)} |`);
console.log("");
console.log(
  `heap in use after 1M entries with compaction (keep 1000): ${(heap1 / 2 ** 20).toFixed(1)} MiB (before: ${(heap0 / 2 ** 20).toFixed(1)} MiB; ${retained} entries retained over 3 servers; run ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);
