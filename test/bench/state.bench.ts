// Benchmark of the replicated state machine: apply rate, O(1) views at 10k vs
// 1M variables, persist (records) iteration and restore rates, beside a plain
// Map as the baseline measured in the same run; then restore of 1 KiB variables
// from records and from a snapshot file, beside the zod-only, record-at-a-time
// restore as the baseline. Run: bun test/bench/state.bench.ts
// (EDGENODE_BENCH_BIG=n sizes the big store; EDGENODE_BENCH_1K=n the 1 KiB section, 0 skips it)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeMultiple, encode } from "../../src/lib/codec.ts";
import { fileChunks, readSnapshot } from "../../src/snapshot/reader.ts";
import { writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { encodeRecordStream } from "../../src/state/record_stream.ts";
import { TablesBuilder } from "../../src/state/restore.ts";
import { StateStore } from "../../src/state/state_store.ts";
import type { SnapshotRecord } from "../../src/state/tables.ts";

const BIG = Number(process.env.EDGENODE_BENCH_BIG ?? 1_000_000);
const N_1K = Number(process.env.EDGENODE_BENCH_1K ?? 200_000);
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
    yield {
      t: "vars",
      v: {
        Path: pathOf(i),
        Items: { host: "10.0.0.1", port: "8080" },
        CreateIndex: i + 1,
        ModifyIndex: i + 1,
        CreateTime: 1,
        ModifyTime: 1,
      },
    };
  }
}

const rows: [string, string, string][] = [];
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString("en-US")}/s`;

// Baseline: plain Map set with the same keys and value shape.
const N_APPLY = 100_000;
{
  const ms = median(
    Array.from({ length: RUNS }, () =>
      timeMs(() => {
        const m = new Map<string, unknown>();
        for (let i = 0; i < N_APPLY; i++) m.set(pathOf(i), { Path: pathOf(i), Items: { host: "10.0.0.1", port: "8080" }, ModifyIndex: i });
      }),
    ),
  );
  rows.push(["baseline: Map.set of a variable-shaped object", rate(N_APPLY, ms), `${N_APPLY} keys`]);
}

// Apply rate of var.put (validation + persistent tree insert), into an empty store.
{
  const ms = median(
    Array.from({ length: RUNS }, () => {
      const s = new StateStore();
      return timeMs(() => {
        for (let i = 0; i < N_APPLY; i++)
          s.apply(i + 1, { op: "var.put", path: pathOf(i), items: { host: "10.0.0.1", port: "8080" }, now: 1 });
      });
    }),
  );
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
  const ms = median(
    Array.from({ length: RUNS }, () =>
      timeMs(() => {
        for (let i = 0; i < reps; i++) s.view();
      }),
    ),
  );
  return (ms / reps) * 1e6; // ns
}
rows.push(["view() at 10k vars", `${viewCost(small).toFixed(0)} ns`, "per call"]);
rows.push([`view() at ${BIG / 1e6}M vars`, `${viewCost(big).toFixed(0)} ns`, "per call"]);

// Apply into the big store while a view is held (copy-on-write keeps it frozen).
{
  let index = big.appliedIndex();
  const held = big.view();
  const ms = median(
    Array.from({ length: RUNS }, () =>
      timeMs(() => {
        for (let i = 0; i < N_APPLY; i++)
          big.apply(++index, { op: "var.put", path: pathOf((i * 7919) % BIG), items: { host: "10.0.0.2", port: "9090" }, now: 2 });
      }),
    ),
  );
  rows.push([`apply var.put (updates) at ${BIG / 1e6}M vars, view held`, rate(N_APPLY, ms), `${N_APPLY} puts`]);
  if (held.getVar(pathOf(0))?.Items.port !== "8080") throw new Error("held view changed");
}

// records(): the persist stream's iteration rate over a view.
{
  const v = big.view();
  const ms = median(
    Array.from({ length: RUNS }, () =>
      timeMs(() => {
        let n = 0;
        for (const _ of v.records()) n++;
        if (n !== BIG) throw new Error(`records() yielded ${n}`);
      }),
    ),
  );
  rows.push(["view.records() iteration", rate(BIG, ms), `${BIG} vars`]);
}
{
  const ms = median(
    Array.from({ length: RUNS }, () => {
      const m = new Map<string, number>();
      for (let i = 0; i < BIG; i++) m.set(pathOf(i), i);
      return timeMs(() => {
        let n = 0;
        for (const _ of m.values()) n++;
        if (n !== BIG) throw new Error("map");
      });
    }),
  );
  rows.push(["baseline: Map.values() iteration", rate(BIG, ms), `${BIG} entries`]);
}

// The full persist -> bytes -> restore path over the record stream (what a snapshot carries).
{
  const v = big.view();
  let chunks: Uint8Array[] = [];
  let bytes = 0;
  const enc = median(
    Array.from({ length: RUNS }, () =>
      timeMs(() => {
        chunks = [...encodeRecordStream(v.records())];
        bytes = chunks.reduce((n, c) => n + c.length, 0);
      }),
    ),
  );
  rows.push([
    "persist: records() -> CBOR record stream",
    rate(BIG, enc),
    `${(bytes / 2 ** 20).toFixed(0)} MiB, ${(bytes / 2 ** 20 / (enc / 1000)).toFixed(0)} MiB/s`,
  ]);
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    times.push(
      await timeMsAsync(async () => {
        const s = await StateStore.restoreFromBytes(chunks, BIG * 2);
        if (s.view().counts().vars !== BIG) throw new Error("restore count");
      }),
    );
  }
  rows.push(["restore from the byte stream (decode + validate + build)", rate(BIG, median(times)), `${BIG} vars`]);
}

// Restore of 1 KiB variables (the snapshot-restore hot path), new vs the baseline: zod for
// every record and one await per record, as restore did before the fast variable check.
async function baselineRestore(records: AsyncIterable<unknown> | Iterable<unknown>, index: number): Promise<void> {
  const b = new TablesBuilder({ zodOnly: true });
  for await (const rec of records) b.add(rec);
  b.finish(index);
}

if (N_1K > 0) {
  // Incompressible base64-alphabet text, as test/cluster's snapshot files use, so zstd does real work.
  const ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const poolBytes = Buffer.alloc(4 << 20);
  let x = 1;
  for (let i = 0; i < poolBytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    poolBytes[i] = ALPHA.charCodeAt((x >>> 0) & 63);
  }
  const pool = poolBytes.toString("latin1");
  const varRecord1k = (i: number): SnapshotRecord => {
    const at = (Math.imul(i + 1, 0x9e3779b1) >>> 0) % (pool.length - 1000);
    return {
      t: "vars",
      v: {
        Path: `bench/k${String(i).padStart(8, "0")}`,
        Items: { data: pool.slice(at, at + 1000) },
        CreateIndex: 10 + i,
        ModifyIndex: 10 + i,
        CreateTime: 1_700_000_000_000,
        ModifyTime: 1_700_000_000_000,
      },
    };
  };
  function* records1k(): Generator<SnapshotRecord> {
    for (let i = 0; i < N_1K; i++) yield varRecord1k(i);
  }
  // Records as a restore receives them: decoded from CBOR (fresh strings and objects).
  const decoded: unknown[] = [];
  {
    const parts: Uint8Array[] = [];
    for (const r of records1k()) {
      parts.push(encode(r));
      if (parts.length === 1000) {
        for (const d of decodeMultiple(Buffer.concat(parts))) decoded.push(d);
        parts.length = 0;
      }
    }
    if (parts.length > 0) for (const d of decodeMultiple(Buffer.concat(parts))) decoded.push(d);
  }
  const dir = mkdtempSync(join(tmpdir(), "edgenode-state-bench-"));
  try {
    const file = join(dir, "vars.snap");
    const w = await writeSnapshotFile(
      file,
      {
        producer: "bench",
        region: "global",
        clusterId: "00000000-0000-4000-8000-000000000000",
        snapshotId: "bench",
        index: N_1K + 10,
        term: 1,
        created: "2026-01-02T03:04:05Z",
        counts: { vars: N_1K },
      },
      records1k(),
      { syncEveryBytes: 0 },
    );
    const mb = w.size / 1e6;
    const measure = async (label: string, note: string, f: () => Promise<void>, bytes?: number) => {
      const times: number[] = [];
      for (let r = 0; r < RUNS; r++) times.push(await timeMsAsync(f));
      const ms = median(times);
      rows.push([label, rate(N_1K, ms), `${note}${bytes === undefined ? "" : `; ${(bytes / (ms / 1000)).toFixed(0)} MB/s of file`}`]);
      return ms;
    };
    const base1 = await measure("baseline: restore 1 KiB vars from records (zod, await per record)", `${N_1K} decoded records`, () =>
      baselineRestore(decoded, N_1K + 10),
    );
    const new1 = await measure("restore 1 KiB vars from records (StateStore.restore)", `${N_1K} decoded records`, async () => {
      const s = await StateStore.restore(decoded, N_1K + 10);
      if (s.view().counts().vars !== N_1K) throw new Error("restore count");
    });
    const base2 = await measure(
      "baseline: restore 1 KiB vars from a snapshot file (zod, readSnapshot().records one at a time)",
      `${mb.toFixed(0)} MB file`,
      () => {
        const it = readSnapshot(fileChunks(file)).records;
        return baselineRestore({ [Symbol.asyncIterator]: () => it[Symbol.asyncIterator]() }, N_1K + 10);
      },
      mb,
    );
    const new2 = await measure(
      "restore 1 KiB vars from a snapshot file (StateStore.restore(readSnapshot().records))",
      `${mb.toFixed(0)} MB file`,
      async () => {
        const s = await StateStore.restore(readSnapshot(fileChunks(file)).records, N_1K + 10);
        if (s.view().counts().vars !== N_1K) throw new Error("restore count");
      },
      mb,
    );
    await measure(
      "reference: readSnapshot(...).batches alone (read, inflate, decode, verify)",
      `${mb.toFixed(0)} MB file`,
      async () => {
        let n = 0;
        for await (const b of readSnapshot(fileChunks(file)).batches) n += b.length;
        if (n !== N_1K) throw new Error("batches count");
      },
      mb,
    );
    rows.push([
      "speed-up from records / from file",
      `${(base1 / new1).toFixed(1)}x / ${(base2 / new2).toFixed(1)}x`,
      "baseline time / new time",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`\nstate bench (median of ${RUNS}; Bun ${Bun.version})\n`);
console.log("| what | median | note |\n|---|---|---|");
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
