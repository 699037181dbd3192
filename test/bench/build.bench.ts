// Building the state from a snapshot file (a restore's apply), stage by stage: read (frames, CRC32,
// SHA-256), decompress, strict CBOR check, decode, validate (the reader's record check and
// TablesBuilder.add), insert (the trees), then the whole path as fsm.ts runs it, and the raft snapshot
// taken after a restore (the header rewrite into a store-like sink). Two source trees are
// measured in the same process, alternating run by run: A (EDGENODE_BENCH_A, a copy of main's src/,
// e.g. `git archive <commit> src | tar -x -C /tmp/a`, with node_modules linked in) and B (this tree's src/).
// Run: EDGENODE_BENCH_A=/tmp/a/src bun test/bench/build.bench.ts
// (EDGENODE_BENCH_VARS=n variables of ~1 KB, default 100,000; EDGENODE_BENCH_RUNS=n, default 7;
// EDGENODE_BENCH_STAGES=0 times only the whole path; EDGENODE_BENCH_ORDER=counter writes the records out of key order)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Decoder } from "cbor-x";
import { header } from "../snapshot/fixture.ts";

const N = Number(process.env.EDGENODE_BENCH_VARS ?? 100_000);
const RUNS = Number(process.env.EDGENODE_BENCH_RUNS ?? 7);
const STAGES = process.env.EDGENODE_BENCH_STAGES !== "0";
const ROOTS: [string, string][] = [["B", resolve(import.meta.dir, "../../src")]];
if (process.env.EDGENODE_BENCH_A) ROOTS.unshift(["A", resolve(process.env.EDGENODE_BENCH_A)]);

type Mods = {
  name: string;
  format: typeof import("../../src/snapshot/format.ts");
  reader: typeof import("../../src/snapshot/reader.ts");
  writer: typeof import("../../src/snapshot/writer.ts");
  check: typeof import("../../src/lib/cbor_check.ts");
  codec: typeof import("../../src/lib/codec.ts");
  restore: typeof import("../../src/state/restore.ts");
  rewrite: typeof import("../../src/snapshot/rewrite.ts");
  release: typeof import("../../src/lib/release.ts");
  store: typeof import("../../src/state/state_store.ts");
  limits: typeof import("../../src/lib/limits.ts");
};

async function load(name: string, root: string): Promise<Mods> {
  return {
    name,
    format: await import(join(root, "snapshot/format.ts")),
    reader: await import(join(root, "snapshot/reader.ts")),
    writer: await import(join(root, "snapshot/writer.ts")),
    check: await import(join(root, "lib/cbor_check.ts")),
    codec: await import(join(root, "lib/codec.ts")),
    restore: await import(join(root, "state/restore.ts")),
    rewrite: await import(join(root, "snapshot/rewrite.ts")),
    release: await import(join(root, "lib/release.ts")),
    store: await import(join(root, "state/state_store.ts")),
    limits: await import(join(root, "lib/limits.ts")),
  };
}

const trees = await Promise.all(ROOTS.map(([n, r]) => load(n, r)));
const B = trees[trees.length - 1] as Mods;

// Variables as the state machine persists them, in key order (state_view walks the tree), ~1 KB each.
/** EDGENODE_BENCH_ORDER=counter: paths `bench/k<i>` in counter order, as restore_vs_hraft's file has (not key order). */
const COUNTER = process.env.EDGENODE_BENCH_ORDER === "counter";
const pathOf = (i: number) => (COUNTER ? `bench/k${i}` : `app/service-${i % 1000}/config-${String(i).padStart(8, "0")}`);
function* records() {
  // Text from a seeded generator, fresh for each variable: compresses about as real values do (zstd -1 keeps ~3/4).
  let seed = 42;
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  const codes = new Uint8Array(880);
  const order = Array.from({ length: N }, (_, i) => i);
  if (!COUNTER) order.sort((a, b) => (pathOf(a) < pathOf(b) ? -1 : 1));
  for (const i of order) {
    for (let j = 0; j < codes.length; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      codes[j] = alphabet.charCodeAt(seed >>> 26);
    }
    const data = Buffer.from(codes).toString("latin1");
    yield {
      t: "vars",
      v: {
        Path: pathOf(i),
        Items: { data, owner: `team-${i % 17}` },
        CreateIndex: i + 1,
        ModifyIndex: i + 3,
        CreateTime: 1_700_000_000_000 + i,
        ModifyTime: 1_700_000_000_000 + i,
      },
    };
  }
}

const dir = mkdtempSync(join(tmpdir(), "edgenode-buildbench-"));
const file = join(dir, "state.snap");
await B.writer.writeSnapshotFile(file, header({ vars: N }), records());
const bytes = new Uint8Array(readFileSync(file));
const fileSha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const times: Record<string, Record<string, number[]>> = {};
const record = (tree: string, stage: string, ms: number) => {
  const by = times[stage] ?? {};
  times[stage] = by;
  by[tree] = [...(by[tree] ?? []), ms];
};

// The decoder lib/codec.ts uses for snapshot blocks (copying), without its check, to time decode alone.
const decoder = new Decoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true, copyBuffers: true });

async function stages(m: Mods): Promise<void> {
  const { FRAME_HEADER_BYTES, PREAMBLE_BYTES, FrameKind, crc32, parseFrameHeader } = m.format;
  // read: frames and CRC32s over the bytes in memory, SHA-256 of the whole.
  let t = performance.now();
  const blocks: { stored: Uint8Array; raw: number }[] = [];
  new Bun.CryptoHasher("sha256").update(bytes).digest();
  let pos = PREAMBLE_BYTES;
  for (;;) {
    const fh = parseFrameHeader(bytes.subarray(pos, pos + FRAME_HEADER_BYTES), pos);
    const payload = bytes.subarray(pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + fh.stored);
    if (crc32(payload) !== fh.payloadCrc) throw new Error("crc");
    pos += FRAME_HEADER_BYTES + fh.stored;
    if (fh.kind === FrameKind.Block) blocks.push({ stored: payload, raw: fh.raw });
    if (fh.kind === FrameKind.End) break;
  }
  record(m.name, "read (frames, CRC32, SHA-256)", performance.now() - t);

  t = performance.now();
  const raws = blocks.map((b) => Bun.zstdDecompressSync(b.stored));
  record(m.name, "decompress (zstd)", performance.now() - t);

  t = performance.now();
  for (const r of raws) m.check.checkCbor(r, m.limits.MAX_CBOR_DEPTH, true);
  record(m.name, "check (strict CBOR walk)", performance.now() - t);

  t = performance.now();
  for (const r of raws) decoder.decodeMultiple(r, () => undefined);
  record(m.name, "decode (cbor-x alone)", performance.now() - t);

  t = performance.now();
  const batches = raws.map((r) => m.codec.decodeMultiple(r));
  record(m.name, "check + decode (codec.decodeMultiple)", performance.now() - t);

  t = performance.now();
  const b = new m.restore.TablesBuilder();
  for (const batch of batches) {
    for (const item of batch) {
      // The reader's per-record shape check, as in reader.ts decodeBlock.
      if (typeof item !== "object" || item === null || Array.isArray(item) || typeof (item as { t?: unknown }).t !== "string")
        throw new Error("shape");
    }
    b.addAll(batch);
  }
  record(m.name, "validate (record shape + TablesBuilder.add)", performance.now() - t);

  t = performance.now();
  const tables = await b.finish(N + 10);
  record(m.name, "insert (build the trees)", performance.now() - t);
  if (tables.vars?.n !== N) throw new Error("count");
}

async function whole(m: Mods, verifiedSha256?: string): Promise<void> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const reader = m.reader.readSnapshot(m.reader.fileChunks(file), { release: true, ...(verifiedSha256 ? { verifiedSha256 } : {}) });
  const s = await m.store.StateStore.restore(reader.records, N + 10);
  // A tree whose reader has no such option (main's) hashes anyway: the row then compares the two.
  const given = verifiedSha256 ? ", the digest given (verifiedSha256)" : "";
  record(m.name, `whole${given}: StateStore.restore(readSnapshot(fileChunks).records)`, performance.now() - t);
  const used = process.cpuUsage(cpu);
  record(m.name, `whole${given}, CPU time of the process (user + system)`, (used.user + used.system) / 1000);
  if (s.view().counts().vars !== N || reader.result?.sha256 !== fileSha256) throw new Error("count");
}

/**
 * Whether a tree's rewrite takes the staged file as verified and gives its output's digest (raft_snapshots.ts
 * then passes that digest to the store, which does not hash again): found by rewriting a tiny file.
 */
async function givesDigest(m: Mods): Promise<boolean> {
  const tiny = Bun.concatArrayBuffers(await Array.fromAsync(m.writer.encodeSnapshot(header({}), [])));
  const result = { size: 0, sha256: "" };
  const next = (old: { counts: Record<string, number> }) => header(old.counts);
  async function* one(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(tiny);
  }
  const opts = { inputVerified: true, result };
  for await (const _ of m.rewrite.rewriteSnapshotHeader(one(), next, opts)) {
    // Run to the end: the result is filled in at the last chunk.
  }
  return result.sha256.length === 64;
}
const given = new Map(await Promise.all(trees.map(async (m) => [m.name, await givesDigest(m)] as const)));

/**
 * The raft snapshot taken after a restore: the file with a new header, into a sink shaped like the snapshot
 * store's (a write at an offset, a SHA-256 of what it wrote unless the rewrite gives it, fsync) and used as
 * raft_snapshots.ts uses it (the staged file taken as verified, each chunk released once written, a turn of
 * the event loop after each).
 */
async function rewrite(m: Mods): Promise<void> {
  const out = join(dir, `rewrite-${m.name}`);
  const cpu = process.cpuUsage();
  const t = performance.now();
  const fh = await open(out, "wx");
  const h = given.get(m.name) ? undefined : new Bun.CryptoHasher("sha256");
  const result = { size: 0, sha256: "" };
  let size = 0;
  const next = (old: { counts: Record<string, number> }) => header(old.counts, { index: N + 20, term: 2, snapshotId: "2-x-raft" });
  const opts = { inputVerified: true, result };
  const rewritten = m.rewrite.rewriteSnapshotHeader(m.reader.fileChunks(file), next, opts);
  for await (const c of rewritten) {
    let off = 0;
    while (off < c.length) off += (await fh.write(c, off, c.length - off, size + off)).bytesWritten;
    h?.update(c);
    size += c.length;
    m.release.release(c);
    await new Promise<void>((r) => setImmediate(r));
  }
  await fh.sync();
  await fh.close();
  const sha256 = h ? h.digest("hex") : result.sha256;
  if (sha256.length !== 64 || (!h && result.size !== size)) throw new Error("digest");
  record(m.name, "after-restore snapshot: rewrite into a store-like sink", performance.now() - t);
  const used = process.cpuUsage(cpu);
  record(m.name, "after-restore snapshot, CPU time of the process", (used.user + used.system) / 1000);
  rmSync(out);
}

// A warm-up run of each, then RUNS alternating (the order flips each run).
for (const m of trees) {
  if (STAGES) await stages(m);
  await whole(m);
  await whole(m, fileSha256);
  await rewrite(m);
}
for (const k of Object.keys(times)) delete times[k];
for (let run = 0; run < RUNS; run++) {
  for (const m of run % 2 === 0 ? trees : [...trees].reverse()) {
    Bun.gc(true);
    if (STAGES) await stages(m);
    Bun.gc(true);
    await whole(m);
    Bun.gc(true);
    await whole(m, fileSha256);
    Bun.gc(true);
    await rewrite(m);
  }
}
if (process.env.EDGENODE_BENCH_KEEP) console.log(file);
else rmSync(dir, { recursive: true, force: true });

console.log(`${N} variables, file ${(bytes.length / 1e6).toFixed(1)} MB, ${RUNS} runs alternating; medians in ms (min–max)`);
const names = trees.map((m) => m.name);
const two = names.length > 1;
console.log(`| stage | ${names.join(" | ")} |${two ? " B/A of medians | median of run ratios B/A |" : ""}`);
console.log(`|---|${names.map(() => "---:").join("|")}|${two ? "---:|---:|" : ""}`);
for (const [stage, by] of Object.entries(times)) {
  const cells = names.map((n) => {
    const xs = by[n] as number[];
    return `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
  });
  const a = by.A as number[];
  const b = by.B as number[];
  const ratio = two ? ` ${(median(b) / median(a)).toFixed(2)} | ${median(b.map((x, i) => x / (a[i] as number))).toFixed(2)} |` : "";
  console.log(`| ${stage} | ${cells.join(" | ")} |${ratio}`);
}
