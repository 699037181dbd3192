// Benchmark of the replicated state machine: apply rate, O(1) views at 10k vs
// 1M variables, persist (records) iteration and restore rates, beside a plain
// Map as the baseline measured in the same run. Run: bun test/bench/state.bench.ts
import { encodeRecordStream } from "../../src/state/record_stream.ts";
import { StateStore } from "../../src/state/state_store.ts";
import type { SnapshotRecord } from "../../src/state/tables.ts";

const BIG = Number(process.env.EDGENODE_BENCH_BIG ?? 1_000_000);
const SMALL = 10_000;
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function timeMs(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

async function timeMsAsync(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

const pathOf = (i: number) => `app/svc-${String(i).padStart(8, "0")}/config`;

function* varRecords(n: number): Generator<SnapshotRecord> {
  for (let i = 0; i < n; i++) {
    yield { t: "vars", v: { Path: pathOf(i), Items: { host: "10.0.0.1", port: "8080" }, CreateIndex: i + 1, ModifyIndex: i + 1, CreateTime: 1, ModifyTime: 1 } };
  }
}

const rows: [string, string, string][] = [];
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString("en-US")}/s`;

// Baseline: plain Map set with the same keys and value shape.
const N_APPLY = 100_000;
{
  const ms = median(Array.from({ length: RUNS }, () => timeMs(() => {
    const m = new Map<string, unknown>();
    for (let i = 0; i < N_APPLY; i++) m.set(pathOf(i), { Path: pathOf(i), Items: { host: "10.0.0.1", port: "8080" }, ModifyIndex: i });
  })));
  rows.push(["baseline: Map.set of a variable-shaped object", rate(N_APPLY, ms), `${N_APPLY} keys`]);
}

// Apply rate of var.put (validation + persistent tree insert), into an empty store.
{
  const ms = median(Array.from({ length: RUNS }, () => {
    const s = new StateStore();
    return timeMs(() => {
      for (let i = 0; i < N_APPLY; i++) s.apply(i + 1, { op: "var.put", path: pathOf(i), items: { host: "10.0.0.1", port: "8080" }, now: 1 });
    });
  }));
  rows.push(["apply var.put (new keys)", rate(N_APPLY, ms), `${N_APPLY} puts into an empty store`]);
}

// Restore rate (validation + O(n) build) and the big store the next rows use.
let big!: StateStore;
{
  // One run: the byte-stream restore below is the full path and takes the median.
  const ms = await timeMsAsync(async () => {
    big = await StateStore.restore(varRecords(BIG), BIG + 10);
  });
  rows.push(["restore from records (validate + build)", rate(BIG, ms), `${BIG} vars, single run`]);
}

const small = await StateStore.restore(varRecords(SMALL), SMALL + 10);

// view(): O(1) whatever the size.
function viewCost(s: StateStore): number {
  const reps = 100_000;
  const ms = median(Array.from({ length: RUNS }, () => timeMs(() => {
    for (let i = 0; i < reps; i++) s.view();
  })));
  return (ms / reps) * 1e6; // ns
}
rows.push(["view() at 10k vars", `${viewCost(small).toFixed(0)} ns`, "per call"]);
rows.push([`view() at ${BIG / 1e6}M vars`, `${viewCost(big).toFixed(0)} ns`, "per call"]);

// Apply into the big store while a view is held (copy-on-write keeps it frozen).
{
  let index = big.appliedIndex();
  const held = big.view();
  const ms = median(Array.from({ length: RUNS }, () => timeMs(() => {
    for (let i = 0; i < N_APPLY; i++) big.apply(++index, { op: "var.put", path: pathOf((i * 7919) % BIG), items: { host: "10.0.0.2", port: "9090" }, now: 2 });
  })));
  rows.push([`apply var.put (updates) at ${BIG / 1e6}M vars, view held`, rate(N_APPLY, ms), `${N_APPLY} puts`]);
  if (held.getVar(pathOf(0))?.Items.port !== "8080") throw new Error("held view changed");
}

// records(): the persist stream's iteration rate over a view.
{
  const v = big.view();
  const ms = median(Array.from({ length: RUNS }, () => timeMs(() => {
    let n = 0;
    for (const _ of v.records()) n++;
    if (n !== BIG) throw new Error(`records() yielded ${n}`);
  })));
  rows.push(["view.records() iteration", rate(BIG, ms), `${BIG} vars`]);
}
{
  const ms = median(Array.from({ length: RUNS }, () => {
    const m = new Map<string, number>();
    for (let i = 0; i < BIG; i++) m.set(pathOf(i), i);
    return timeMs(() => {
      let n = 0;
      for (const _ of m.values()) n++;
      if (n !== BIG) throw new Error("map");
    });
  }));
  rows.push(["baseline: Map.values() iteration", rate(BIG, ms), `${BIG} entries`]);
}

// The full persist -> bytes -> restore path over the record stream (what a snapshot carries).
{
  const v = big.view();
  let chunks: Uint8Array[] = [];
  let bytes = 0;
  const enc = median(Array.from({ length: RUNS }, () => timeMs(() => {
    chunks = [...encodeRecordStream(v.records())];
    bytes = chunks.reduce((n, c) => n + c.length, 0);
  })));
  rows.push(["persist: records() -> CBOR record stream", rate(BIG, enc), `${(bytes / 2 ** 20).toFixed(0)} MiB, ${((bytes / 2 ** 20) / (enc / 1000)).toFixed(0)} MiB/s`]);
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    times.push(await timeMsAsync(async () => {
      const s = await StateStore.restoreFromBytes(chunks, BIG * 2);
      if (s.view().counts().vars !== BIG) throw new Error("restore count");
    }));
  }
  rows.push(["restore from the byte stream (decode + validate + build)", rate(BIG, median(times)), `${BIG} vars`]);
}

console.log(`\nstate bench (median of ${RUNS}; Bun ${Bun.version})\n`);
console.log("| what | median | note |\n|---|---|---|");
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
