// Storage benchmark: the WAL against a raw 4 KiB write+fdatasync loop measured in the same run,
// plus the event-loop cost of each way to fdatasync (sync call, async fs, Worker). Prints a
// markdown table of medians of 9 interleaved rounds (EDGENODE_BENCH_ROUNDS). The WAL rows use
// RealDisk's default (async fs.fdatasync) and a preallocated (zero-filled) tail unless they say otherwise.
// Run: bun test/bench/storage.bench.ts (about 60 s).
import * as fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../../src/raft/storage.ts";
import type { Disk } from "../../src/storage/disk.ts";
import { RealDisk, realDisk } from "../../src/storage/real_disk.ts";
import { Wal } from "../../src/storage/wal.ts";

const root = mkdtempSync(join(process.env.EDGENODE_BENCH_DIR ?? tmpdir(), "edgenode-bench-"));
const quiet = () => {};
const RUN_MS = 800;
const ROUNDS = Number(process.env.EDGENODE_BENCH_ROUNDS ?? 9);
const OPEN_BYTES = Number(process.env.EDGENODE_BENCH_OPEN_BYTES ?? 1024 ** 3);
let dirs = 0;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Runs body repeatedly for RUN_MS while a 1 ms interval measures event-loop stalls. */
async function timed(body: () => Promise<number> | number): Promise<{ perSec: number; maxLagMs: number }> {
  let maxLag = 0;
  let last = performance.now();
  const iv = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  let units = 0;
  while (performance.now() - t0 < RUN_MS) units += await body();
  const dt = performance.now() - t0;
  clearInterval(iv);
  // A fully blocked loop never runs the interval at all: count the final gap too.
  maxLag = Math.max(maxLag, performance.now() - last);
  return { perSec: (units / dt) * 1000, maxLagMs: maxLag };
}

async function raw(kind: "sync" | "async" | "worker", size = 4096, zeroFilled = false): Promise<{ perSec: number; maxLagMs: number }> {
  const path = join(root, `raw-${kind}-${dirs++}`);
  const fd = fs.openSync(path, "w+");
  if (zeroFilled) {
    const z = new Uint8Array(1 << 20);
    for (let i = 0; i < 64; i++) fs.writeSync(fd, z, 0, z.length, i << 20);
    fs.fsyncSync(fd);
  }
  const buf = new Uint8Array(size).fill(1);
  let pos = 0;
  let worker: Worker | undefined;
  let pending: (() => void) | undefined;
  if (kind === "worker") {
    const code = `import * as fs from "node:fs"; self.onmessage = (e) => { fs.fdatasyncSync(e.data); postMessage(0); };`;
    worker = new Worker(URL.createObjectURL(new Blob([code], { type: "application/javascript" })));
    worker.onmessage = () => pending?.();
  }
  const r = await timed(async () => {
    fs.writeSync(fd, buf, 0, buf.length, pos);
    pos += buf.length;
    if (kind === "sync") fs.fdatasyncSync(fd);
    else if (kind === "async") await new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
    else {
      await new Promise<void>((res) => {
        pending = res;
        worker?.postMessage(fd);
      });
    }
    return 1;
  });
  worker?.terminate();
  fs.closeSync(fd);
  rmSync(path);
  return r;
}

function entries(first: number, n: number, size: number, term = 1): Entry[] {
  const data = new Uint8Array(size).fill(7);
  return Array.from({ length: n }, (_, k) => ({ index: first + k, term, type: 0 as const, data }));
}

async function walAppend(batch: number, size: number, disk: Disk = realDisk, preallocate = true) {
  const dir = join(root, `wal-${dirs++}`);
  const w = await Wal.open(dir, { log: quiet, disk, preallocate });
  const r = await timed(async () => {
    await w.append(entries(w.lastIndex() + 1, batch, size));
    return batch;
  });
  await w.close();
  rmSync(dir, { recursive: true });
  return r;
}

async function seqRead(): Promise<number> {
  const dir = join(root, `read-${dirs++}`);
  const w = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
  for (let i = 0; i < 64; i++) await w.append(entries(w.lastIndex() + 1, 256, 4096));
  const bytes = w.lastIndex() * 4096;
  const t0 = performance.now();
  for (let lo = 1; lo <= w.lastIndex(); ) lo += w.entries(lo, w.lastIndex() + 1, 1 << 20).length;
  const mbs = bytes / 1e6 / ((performance.now() - t0) / 1000);
  await w.close();
  rmSync(dir, { recursive: true });
  return mbs;
}

async function openBig(): Promise<{ ms: number; entries: number }> {
  const dir = join(root, `big-${dirs++}`);
  const w = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
  const size = 1024;
  const perBatch = 4096;
  while (w.lastIndex() * (size + 32) < OPEN_BYTES) await w.append(entries(w.lastIndex() + 1, perBatch, size));
  const n = w.lastIndex();
  await w.close();
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const w2 = await Wal.open(dir, { log: quiet, cacheBytes: 0 });
    times.push(performance.now() - t0);
    if (w2.lastIndex() !== n) throw new Error(`reopen lost entries: ${w2.lastIndex()} != ${n}`);
    await w2.close();
  }
  rmSync(dir, { recursive: true });
  return { ms: median(times), entries: n };
}

type Rate = { perSec: number; maxLagMs: number };
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
try {
  // Rounds interleave every measurement, so a slow spell of the shared disk hits all rows alike
  // rather than whichever row happened to run during it.
  const cases: Record<string, () => Promise<Rate>> = {
    rawSync: () => raw("sync"),
    rawAsync: () => raw("async"),
    rawWorker: () => raw("worker"),
    rawWorker4176: () => raw("worker", 4176),
    rawZeroAsync: () => raw("async", 4096, true),
    single128Async: () => walAppend(1, 128, workerDisk),
    single128NoPrealloc: () => walAppend(1, 128, realDisk, false),
    single128: () => walAppend(1, 128),
    single4k: () => walAppend(1, 4096),
    batched: () => walAppend(64, 128),
  };
  const workerDisk = new RealDisk({ fdatasync: "worker" });
  const runs: Record<string, Rate[]> = {};
  // Before each measurement, flush the page cache's dirty data (sync(1)): the previous case's
  // writes and deleted files are otherwise still being written back while the next one runs. Each
  // round also starts at a different case, so no case always follows the same neighbour.
  const names = Object.keys(cases);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < names.length; i++) {
      const k = names[(r + i) % names.length] as string;
      Bun.spawnSync(["sync"]);
      const rate = await (cases[k] as () => Promise<Rate>)();
      runs[k] = [...(runs[k] ?? []), rate];
    }
  }
  const med = (k: string): Rate => {
    const rs = runs[k] ?? [];
    return { perSec: median(rs.map((x) => x.perSec)), maxLagMs: median(rs.map((x) => x.maxLagMs)) };
  };
  const [rawSync, rawAsync, rawWorker, rawWorker4176, rawZeroAsync, single128Async, single128NoPrealloc, single128, single4k, batched] =
    Object.keys(cases).map(med) as Rate[] as [Rate, Rate, Rate, Rate, Rate, Rate, Rate, Rate, Rate, Rate];
  const reads = [await seqRead(), await seqRead(), await seqRead()];
  const big = await openBig();

  const rows: string[][] = [
    ["raw 4 KiB write + fdatasyncSync (baseline)", `${fmt(rawSync.perSec)} syncs/s`, "1.00×", `${fmt(rawSync.maxLagMs)} ms`],
    [
      "raw 4 KiB write + async fs.fdatasync",
      `${fmt(rawAsync.perSec)} syncs/s`,
      `${(rawAsync.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(rawAsync.maxLagMs)} ms`,
    ],
    [
      "raw 4 KiB write + fdatasyncSync in a Worker",
      `${fmt(rawWorker.perSec)} syncs/s`,
      `${(rawWorker.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(rawWorker.maxLagMs)} ms`,
    ],
    [
      "raw 4,176 B write (a 4 KiB entry's batch) + fdatasyncSync in a Worker",
      `${fmt(rawWorker4176.perSec)} syncs/s`,
      `${(rawWorker4176.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(rawWorker4176.maxLagMs)} ms`,
    ],
    [
      "raw 4 KiB overwrite of a zero-filled file + async fs.fdatasync",
      `${fmt(rawZeroAsync.perSec)} syncs/s`,
      `${(rawZeroAsync.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(rawZeroAsync.maxLagMs)} ms`,
    ],
    [
      "WAL append, 1 entry × 128 B per call, not preallocated",
      `${fmt(single128NoPrealloc.perSec)} entries/s`,
      `${(single128NoPrealloc.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(single128NoPrealloc.maxLagMs)} ms`,
    ],
    [
      "WAL append, 1 entry × 128 B per call, fdatasync worker (RealDisk option)",
      `${fmt(single128Async.perSec)} entries/s`,
      `${(single128Async.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(single128Async.maxLagMs)} ms`,
    ],
    [
      "WAL append, 1 entry × 128 B per call",
      `${fmt(single128.perSec)} entries/s`,
      `${(single128.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(single128.maxLagMs)} ms`,
    ],
    [
      "WAL append, 1 entry × 4 KiB per call",
      `${fmt(single4k.perSec)} entries/s`,
      `${(single4k.perSec / rawSync.perSec).toFixed(2)}×`,
      `${fmt(single4k.maxLagMs)} ms`,
    ],
    [
      "WAL append, 64 entries × 128 B per call",
      `${fmt(batched.perSec)} entries/s`,
      `${(batched.perSec / single128.perSec).toFixed(1)}× single`,
      `${fmt(batched.maxLagMs)} ms`,
    ],
    ["WAL sequential read (no cache, 1 MiB calls)", `${fmt(median(reads))} MB/s`, "", ""],
    [
      `WAL open, ${(OPEN_BYTES / 1024 ** 3).toFixed(2)} GiB log (${big.entries.toLocaleString("en-US")} × 1 KiB, page cache warm)`,
      `${fmt(big.ms)} ms`,
      "",
      "",
    ],
  ];
  console.log(`\n| measurement (median of ${ROUNDS}, interleaved) | result | vs baseline | max event-loop stall |`);
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
