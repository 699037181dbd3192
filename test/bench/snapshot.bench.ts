// Snapshot file throughput: write and verify of ~256 MiB of 1 KiB variables, beside the raw disk write
// rate (dd conv=fdatasync) and a plain read+SHA-256 pass measured in the same run; plus the compression
// comparison that chose zstd level 1. Run: bun test/bench/snapshot.bench.ts  (EDGENODE_BENCH_MIB=N to resize,
// EDGENODE_BENCH_RUNS=N, EDGENODE_BENCH_PIPELINE=1 to add the thread-pool zstd variant)

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { encode } from "../../src/lib/codec.ts";
import { BLOCK_TARGET_BYTES } from "../../src/snapshot/format.ts";
import { StateStore } from "../../src/state/state_store.ts";
import { fileChunks, readSnapshot, verifySnapshotFile } from "../../src/snapshot/reader.ts";
import { writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { header, textPool, variable, variableRecords } from "../snapshot/fixture.ts";

const MIB = 1 << 20;
const TOTAL_MIB = Number(process.env.EDGENODE_BENCH_MIB ?? 256);
const RUNS = Number(process.env.EDGENODE_BENCH_RUNS ?? 3);
const RECORD = 1024;
const n = Math.floor((TOTAL_MIB * MIB) / RECORD);
const dir = mkdtempSync(join(tmpdir(), "edgenode-snapbench-"));
const pool = textPool(42, 4 * MIB);

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 50);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function dd(path: string): Promise<number> {
  const p = Bun.spawn(["dd", "if=/dev/zero", `of=${path}`, "bs=1M", `count=${TOTAL_MIB}`, "conv=fdatasync"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const err = await new Response(p.stderr).text();
  await p.exited;
  // "268435456 bytes (268 MB, 256 MiB) copied, 0.61 s, 440 MB/s"
  const m = /copied, ([\d.,]+) s/.exec(err);
  if (!m) throw new Error(`dd output not understood: ${err}`);
  rmSync(path);
  return mbps(TOTAL_MIB * MIB, Number(m[1]!.replace(",", ".")) * 1000);
}

async function shaPass(path: string): Promise<number> {
  const t = performance.now();
  const h = new Bun.CryptoHasher("sha256");
  let bytes = 0;
  for await (const c of fileChunks(path)) {
    h.update(c);
    bytes += c.length;
  }
  h.digest();
  return mbps(bytes, performance.now() - t);
}

const rows: Record<string, number[]> = {};
const push = (k: string, v: number) => {
  rows[k] = [...(rows[k] ?? []), v];
};

// Raw record bytes (encoded {t, v}), to report MB/s of state as well as of file.
let rawBytes = 0;
for (let i = 0; i < 1000; i++) rawBytes += encode({ t: "vars", v: variable(i, pool, RECORD) }).length;
rawBytes = (rawBytes / 1000) * n;

let fileSize = 0;
Bun.gc(true);
const startRss = process.memoryUsage.rss();
peakRss = startRss;
for (let run = 0; run < RUNS; run++) {
  push("dd bs=1M conv=fdatasync (raw disk write)", await dd(join(dir, "dd.bin")));
  const path = join(dir, "bench.snap");
  const { counts, records } = variableRecords(n, pool, RECORD);
  // The thread-pool variant is slower than inline in this bench (RESULTS.md, snapshot); EDGENODE_BENCH_PIPELINE=1 adds it back.
  for (const pipeline of process.env.EDGENODE_BENCH_PIPELINE === "1" ? [0, 2] : [0]) {
    const mode = pipeline === 0 ? "inline zstd" : `zstd on thread pool, ${pipeline} ahead`;
    let t = performance.now();
    const w = await writeSnapshotFile(path, header(counts), records(), { pipeline });
    const wms = performance.now() - t;
    fileSize = w.size;
    push(`snapshot write (encode+zstd+sha256+fsync; ${mode}), file MB/s`, mbps(w.size, wms));
    push(`snapshot write (${mode}), state MB/s`, mbps(rawBytes, wms));
    if (pipeline === 0) push("read + SHA-256 only (baseline), file MB/s", await shaPass(path));
    t = performance.now();
    const v = await verifySnapshotFile(path, { pipeline });
    const vms = performance.now() - t;
    if (v.records !== w.records) throw new Error("verify disagrees with write");
    push(`snapshot verify (sha256+crc+unzstd+CBOR decode; ${mode}), file MB/s`, mbps(v.size, vms));
    push(`snapshot verify (${mode}), state MB/s`, mbps(rawBytes, vms));
    rmSync(path);
  }
}

const peakFileRss = peakRss;

// End to end with the real state machine: a store's view saved, then read back into a new store in one
// pass (readSnapshot's records feeding StateStore.restore), which is what a restore has to do.
const STATE_VARS = Number(process.env.EDGENODE_BENCH_STATE_VARS ?? 65536);
const stateRows: string[] = [];
{
  const store = new StateStore();
  for (let k = 0; k < STATE_VARS; k++) {
    const at = (k * 7919) % (pool.length - 1000);
    store.apply(k + 1, {
      op: "var.put",
      path: `app/service-${k % 1000}/config-${k}`,
      items: { data: pool.slice(at, at + 900) },
      now: 1000 + k,
    });
  }
  const view = store.view();
  let stateBytes = 0;
  for (const r of view.records()) stateBytes += encode(r).length;
  const path = join(dir, "state.snap");
  const w: number[] = [];
  const v: number[] = [];
  const rs: number[] = [];
  let size = 0;
  for (let run = 0; run < RUNS; run++) {
    let t = performance.now();
    size = (await writeSnapshotFile(path, header(view.counts(), { index: view.index }), view.records())).size;
    w.push(performance.now() - t);
    t = performance.now();
    await verifySnapshotFile(path);
    v.push(performance.now() - t);
    t = performance.now();
    const reader = readSnapshot(fileChunks(path));
    await StateStore.restore(reader.records, STATE_VARS + 1);
    rs.push(performance.now() - t);
    rmSync(path);
  }
  const row = (name: string, ms: number[]) =>
    `| ${name} | ${mbps(stateBytes, median(ms)).toFixed(0)} | ${mbps(size, median(ms)).toFixed(0)} |`;
  stateRows.push(
    `\n## With the state machine: ${STATE_VARS} variables (${(stateBytes / MIB).toFixed(0)} MiB of state, ${(size / MIB).toFixed(1)} MiB file), median of ${RUNS}\n`,
  );
  stateRows.push("| measure | state MB/s | file MB/s |", "|---|---:|---:|");
  stateRows.push(
    row("save: view.records() -> writeSnapshotFile", w),
    row("verifySnapshotFile", v),
    row("restore: readSnapshot -> StateStore.restore (one pass, verified)", rs),
  );
}

// The compression choice: the same records in the format's blocks through each candidate.
const sample: Uint8Array[] = [];
{
  const parts: Uint8Array[] = [];
  let len = 0;
  for (let i = 0; sample.length < (32 * MIB) / BLOCK_TARGET_BYTES; i++) {
    const b = encode({ t: "vars", v: variable(i, pool, RECORD) }).slice();
    parts.push(b);
    len += b.length;
    if (len >= BLOCK_TARGET_BYTES) {
      sample.push(new Uint8Array(Buffer.concat(parts)));
      parts.length = 0;
      len = 0;
    }
  }
}
const C = zlib.constants;
const codecs: [string, (b: Uint8Array) => Uint8Array, (b: Uint8Array) => Uint8Array][] = [
  [
    "zstd level 1 (chosen)",
    (b) => zlib.zstdCompressSync(b, { params: { [C.ZSTD_c_compressionLevel]: 1 } }),
    (b) => zlib.zstdDecompressSync(b),
  ],
  ["zstd level 3", (b) => zlib.zstdCompressSync(b, { params: { [C.ZSTD_c_compressionLevel]: 3 } }), (b) => zlib.zstdDecompressSync(b)],
  ["gzip level 1", (b) => zlib.gzipSync(b, { level: 1 }), (b) => zlib.gunzipSync(b)],
  ["deflate-raw level 1", (b) => zlib.deflateRawSync(b, { level: 1 }), (b) => zlib.inflateRawSync(b)],
  ["brotli quality 1", (b) => zlib.brotliCompressSync(b, { params: { [C.BROTLI_PARAM_QUALITY]: 1 } }), (b) => zlib.brotliDecompressSync(b)],
];
const codecRows: string[] = [];
const sampleBytes = sample.reduce((a, b) => a + b.length, 0);
for (const [name, comp, decomp] of codecs) {
  const c: number[] = [];
  const d: number[] = [];
  let out = 0;
  for (let run = 0; run < RUNS; run++) {
    let t = performance.now();
    const packed = sample.map(comp);
    c.push(mbps(sampleBytes, performance.now() - t));
    out = packed.reduce((a, b) => a + b.length, 0);
    t = performance.now();
    for (const p of packed) decomp(p);
    d.push(mbps(sampleBytes, performance.now() - t));
  }
  codecRows.push(`| ${name} | ${(out / sampleBytes).toFixed(3)} | ${median(c).toFixed(0)} | ${median(d).toFixed(0)} |`);
}

clearInterval(sampler);
rmSync(dir, { recursive: true, force: true });

console.log(
  `\n## Snapshot file: ${n} variables of ~${RECORD} B (${(rawBytes / MIB).toFixed(0)} MiB of state, ${(fileSize / MIB).toFixed(0)} MiB file), median of ${RUNS}\n`,
);
console.log("| measure | MB/s (median) | runs |");
console.log("|---|---:|---|");
for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${median(v).toFixed(0)} | ${v.map((x) => x.toFixed(0)).join(", ")} |`);
console.log(
  `\nRSS of this process: ${(startRss / MIB).toFixed(0)} MiB before the file runs, peak ${(peakFileRss / MIB).toFixed(0)} MiB during them (sampled every 50 ms).`,
);
console.log(
  `Load average at the end: ${(await import("node:os"))
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")} on 2 cores shared with other work; verify reads the file just written, mostly from the page cache.\n`,
);
for (const line of stateRows) console.log(line);
console.log(
  `\n## Compression of the same records in ${BLOCK_TARGET_BYTES >> 10} KiB blocks (${(sampleBytes / MIB).toFixed(0)} MiB sample, one core, node:zlib defaults)\n`,
);
console.log("| codec | ratio | compress MB/s | decompress MB/s |");
console.log("|---|---:|---:|---:|");
for (const r of codecRows) console.log(r);
