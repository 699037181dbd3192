// Round trips through the writer and the verifying reader: records, tables, counts, header fields,
// chunking, large records, empty snapshots, the file writer's mode and atomicity, writer refusals.

import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readdirSync, statSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BLOCK_TARGET_BYTES, formatVersionOf, type SnapshotRecord } from "../../src/snapshot/format.ts";
import { fileChunks, readSnapshot, readSnapshotHeader, verifySnapshot, verifySnapshotFile } from "../../src/snapshot/reader.ts";
import { encodeSnapshot, SAVE_PIPELINE, snapshotStream, writeSnapshotFile, type WriteResult } from "../../src/snapshot/writer.ts";
import { formatInspect, inspectSnapshotFile } from "../../src/snapshot/inspect.ts";
import { chunked, collect, header, rng, textPool, variableRecords } from "./fixture.ts";

// Whole-file passes over a few MiB, hundreds of times: generous on a loaded 2-core box.
setDefaultTimeout(60_000);

const pool = textPool(1);

/** Byte strings decode as Buffer (a Uint8Array); compare contents, not classes. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return { bytes: Array.from(x) };
  if (Array.isArray(x)) return x.map(plain);
  if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  return x;
}

function mixedRecords(): { counts: Record<string, number>; list: SnapshotRecord[] } {
  const list: SnapshotRecord[] = [];
  for (let i = 0; i < 3000; i++) {
    list.push({ t: "vars", v: { Path: `p/${i}`, Items: { k: pool.slice(i, i + 200) }, CreateIndex: i, ModifyIndex: i + 1 } });
    if (i % 3 === 0) list.push({ t: "locks", v: { Path: `l/${i}`, Holder: i % 2 ? null : "s1", TTL: 15000 } });
    if (i % 100 === 0)
      list.push({
        t: "acl_tokens",
        v: { SecretID: `s-${i}`, Bytes: new Uint8Array([i & 255, 1, 2, 3]), Neg: -i - 1, F: i / 7, B: i % 2 === 0 },
      });
  }
  const counts: Record<string, number> = { empty_table: 0 };
  for (const r of list) counts[r.t] = (counts[r.t] ?? 0) + 1;
  return { counts, list };
}

describe("snapshot round trip", () => {
  test("records, tables and counts come back exactly, across random chunk boundaries", async () => {
    const { counts, list } = mixedRecords();
    const result: WriteResult = { size: 0, sha256: "", digest: "", records: 0 };
    const bytes = await collect(encodeSnapshot(header(counts), list, result, { pipeline: SAVE_PIPELINE }));
    // Compression on the thread pool (a save's) must produce the very same bytes as inline (the default).
    expect(await collect(encodeSnapshot(header(counts), list))).toEqual(bytes);
    expect(result.size).toBe(bytes.length);
    expect(result.records).toBe(list.length);
    expect(result.sha256).toBe(new Bun.CryptoHasher("sha256").update(bytes).digest("hex"));
    expect(result.digest).toBe(`sha-256=${new Bun.CryptoHasher("sha256").update(bytes).digest("base64")}`);

    for (const [seed, pipeline] of [
      [1, 0],
      [2, 2],
      [3, 5],
    ] as const) {
      const reader = readSnapshot(chunked(bytes, seed, seed === 3 ? 7 : 64 * 1024), { pipeline });
      const h = await reader.header;
      expect(h.formatVersion).toBe(formatVersionOf(h));
      expect(h.counts).toEqual(counts);
      const got: SnapshotRecord[] = [];
      for await (const r of reader.records) got.push(r);
      expect(plain(got)).toEqual(plain(list));
      expect(reader.result?.sha256).toBe(result.sha256);
      expect(reader.result?.digest).toBe(result.digest);
      expect(reader.result?.counts).toEqual(counts);
    }
  });

  test("header fields survive; verifySnapshot reports size, digest and counts", async () => {
    const { counts, records } = variableRecords(500, pool);
    const h = header(counts, { index: 123456789, term: 42, region: "eu-west", snapshotId: "42-123456789-1" });
    const bytes = await collect(encodeSnapshot(h, records()));
    const v = await verifySnapshot(chunked(bytes, 9));
    expect(v.header).toEqual({ ...h, formatVersion: formatVersionOf(h) });
    expect(v.size).toBe(bytes.length);
    expect(v.counts).toEqual(counts);
    expect(v.records).toBe(510);
    expect(await readSnapshotHeader(chunked(bytes, 10))).toEqual({ ...h, formatVersion: formatVersionOf(h) });
  });

  test("a record larger than a block, an async iterable, and many blocks", async () => {
    const big = new Uint8Array(BLOCK_TARGET_BYTES * 2 + 17).map((_, i) => (i * 31) & 255);
    async function* gen(): AsyncGenerator<SnapshotRecord> {
      for (let i = 0; i < 2000; i++) yield { t: "vars", v: pool.slice(i, i + 2000) };
      yield { t: "blobs", v: big };
      for (let i = 0; i < 2000; i++) yield { t: "vars", v: i };
    }
    const bytes = await collect(encodeSnapshot(header({ vars: 4000, blobs: 1 }), gen()));
    // Pipelined, block buffers are recycled around the big record's own block: the same bytes.
    expect(await collect(encodeSnapshot(header({ vars: 4000, blobs: 1 }), gen(), undefined, { pipeline: SAVE_PIPELINE }))).toEqual(bytes);
    const reader = readSnapshot(chunked(bytes, 4));
    let n = 0;
    let blocks = 0;
    for await (const batch of reader.batches) {
      blocks++;
      for (const r of batch) {
        if (r.t === "blobs") expect(new Uint8Array(r.v as Uint8Array)).toEqual(big);
        n++;
      }
    }
    expect(n).toBe(4001);
    expect(blocks).toBeGreaterThanOrEqual(3);
  });

  test("cancel after reading the header releases the source", async () => {
    const { counts, records } = variableRecords(100, pool);
    const bytes = await collect(encodeSnapshot(header(counts), records()));
    let closed = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        yield* chunked(bytes, 8, 1024);
      } finally {
        closed = true;
      }
    }
    const reader = readSnapshot(source());
    expect((await reader.header).counts).toEqual(counts);
    expect(closed).toBe(false);
    await reader.cancel();
    expect(closed).toBe(true);
  });

  test("an empty snapshot round trips", async () => {
    const bytes = await collect(encodeSnapshot(header({}), []));
    const v = await verifySnapshot(chunked(bytes, 5));
    expect(v.records).toBe(0);
    expect(v.counts).toEqual({});
  });

  test("snapshotStream is a ReadableStream the reader accepts", async () => {
    const { counts, records } = variableRecords(2000, pool);
    const v = await verifySnapshot(snapshotStream(header(counts), records()));
    expect(v.counts).toEqual(counts);
  });

  test("snapshotStream is pull-based: an unread stream pulls no more than about a block of records", async () => {
    let pulled = 0;
    function* endless(): Generator<SnapshotRecord> {
      for (;;) {
        pulled++;
        yield { t: "vars", v: pool.slice(pulled % 1000, (pulled % 1000) + 1000) };
      }
    }
    const stream = snapshotStream(header({ vars: 1e12 }), endless());
    const reader = stream.getReader();
    let bytes = 0;
    for (let i = 0; i < 6; i++) {
      const r = await reader.read();
      expect(r.done).toBe(false);
      bytes += r.value!.length;
    }
    const perBlock = BLOCK_TARGET_BYTES / 1000;
    // About three blocks were read; the producer must not have run more than a block ahead of them.
    expect(pulled).toBeLessThan(perBlock * 5);
    await reader.cancel();
    expect(bytes).toBeGreaterThan(0);
  });

  test("the writer refuses records that disagree with the header's counts, and the output never verifies", async () => {
    const cases: [Record<string, number>, SnapshotRecord[], RegExp][] = [
      [{ vars: 2 }, [{ t: "vars", v: 1 }], /table "vars" produced 1 records but the header declares 2/],
      [
        { vars: 1 },
        [
          { t: "vars", v: 1 },
          { t: "vars", v: 2 },
        ],
        /more records than the header declares/,
      ],
      [{ vars: 1 }, [{ t: "other", v: 1 }], /table "other", which the header's counts do not list/],
    ];
    for (const [counts, list, re] of cases) {
      const parts: Uint8Array[] = [];
      let err: unknown;
      try {
        for await (const c of encodeSnapshot(header(counts), list)) parts.push(c);
      } catch (e) {
        err = e;
      }
      expect(String(err)).toMatch(re);
      await expect(verifySnapshot(chunked(new Uint8Array(Buffer.concat(parts)), 1))).rejects.toThrow(/truncated/);
    }
    await expect(collect(encodeSnapshot(header({}, { region: "" }), []))).rejects.toThrow(/region is empty/);
    await expect(collect(encodeSnapshot(header(JSON.parse('{"__proto__": 0}')), []))).rejects.toThrow(
      /"__proto__" is not a valid table name/,
    );
    await expect(collect(encodeSnapshot(header({}, { created: "now" }), []))).rejects.toThrow(/not an RFC 3339 time/);
    await expect(collect(encodeSnapshot(header({}, { index: -1 }), []))).rejects.toThrow(/index must be a non-negative integer/);
  });
});

describe("snapshot files", () => {
  // Each test writes into a directory of its own: none sees another's files, in any order.
  const dirs: string[] = [];
  const freshDir = () => {
    const d = mkdtempSync(join(tmpdir(), "edgenode-snap-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("writeSnapshotFile creates mode 0600 atomically, and inspect verifies and prints it", async () => {
    const dir = freshDir();
    const { counts, records } = variableRecords(3000, pool);
    const path = join(dir, "a.snap");
    const old = process.umask(0o000);
    let res: WriteResult;
    try {
      res = await writeSnapshotFile(path, header(counts), records());
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBe(res.size);
    expect(readdirSync(dir)).toEqual(["a.snap"]);
    const v = await verifySnapshotFile(path);
    expect(v.sha256).toBe(res.sha256);
    const v2 = await verifySnapshot(fileChunks(path, 4096 + 3));
    expect(v2.sha256).toBe(res.sha256);

    const out = formatInspect(await inspectSnapshotFile(path));
    expect(out).toMatch(/^ID {10}2-19-1592495928936$/m);
    expect(out).toMatch(new RegExp(`^Size {8}${res.size}$`, "m"));
    expect(out).toMatch(/^Index {7}19$/m);
    expect(out).toMatch(/^Term {8}2$/m);
    expect(out).toMatch(/^Version {5}1$/m);
    expect(out).toMatch(/^Region {6}global$/m);
    expect(out).toMatch(/^acl_tokens {2}10$/m);
    expect(out).toMatch(/^vars {8}3000$/m);
    expect(out).toMatch(/^Total {7}3010$/m);
  });

  test("inspect of a missing file or a directory says so", async () => {
    const dir = freshDir();
    await expect(inspectSnapshotFile(join(dir, "nope.snap"))).rejects.toThrow(
      `cannot read snapshot file ${join(dir, "nope.snap")}: ENOENT`,
    );
    await expect(inspectSnapshotFile(dir)).rejects.toThrow(/not a regular file/);
  });

  test("a small syncEveryBytes (many intermediate fdatasyncs) writes the same file", async () => {
    const dir = freshDir();
    const { counts, records } = variableRecords(2000, pool);
    const a = await writeSnapshotFile(join(dir, "e1.snap"), header(counts), records(), { syncEveryBytes: 64 * 1024 });
    const b = await writeSnapshotFile(join(dir, "e2.snap"), header(counts), records(), { syncEveryBytes: 0 });
    expect(a.sha256).toBe(b.sha256);
    expect((await verifySnapshotFile(join(dir, "e1.snap"))).sha256).toBe(a.sha256);
  });

  test("overwrite: false refuses an existing destination and leaves it as it was", async () => {
    const dir = freshDir();
    const path = join(dir, "d.snap");
    const first = await writeSnapshotFile(path, header({ vars: 1 }), [{ t: "vars", v: 1 }], { overwrite: false });
    await expect(writeSnapshotFile(path, header({ vars: 1 }), [{ t: "vars", v: 2 }], { overwrite: false })).rejects.toThrow(/EEXIST/);
    expect((await verifySnapshotFile(path)).sha256).toBe(first.sha256);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.includes("d.snap"))).toEqual(["d.snap"]);
  });

  test("a failing record source leaves neither the file nor a temporary behind", async () => {
    const dir = freshDir();
    const path = join(dir, "b.snap");
    function* failing(): Generator<SnapshotRecord> {
      for (let i = 0; i < 5000; i++) yield { t: "vars", v: pool.slice(i, i + 900) };
      throw new Error("state machine went away");
    }
    await expect(writeSnapshotFile(path, header({ vars: 10000 }), failing())).rejects.toThrow(/state machine went away/);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes("b.snap"))).toEqual([]);
  });

  test("writeSnapshotFile replaces an existing file only once the new one is complete", async () => {
    const dir = freshDir();
    const path = join(dir, "c.snap");
    const first = await writeSnapshotFile(path, header({ vars: 1 }), [{ t: "vars", v: 1 }]);
    await expect(writeSnapshotFile(path, header({ vars: 2 }), [{ t: "vars", v: 1 }])).rejects.toThrow(/header declares 2/);
    expect((await verifySnapshotFile(path)).sha256).toBe(first.sha256);
  });
});

describe("an owning reader (release: true)", () => {
  /** Fresh buffers of seeded random sizes from 16 to 48 KiB (the last one shorter), each kept for checking. */
  async function* fresh(bytes: Uint8Array, seed: number, handed: Uint8Array[]): AsyncGenerator<Uint8Array> {
    const r = rng(seed);
    let at = 0;
    while (at < bytes.length) {
      const n = 16 * 1024 + Math.floor(r() * 32 * 1024);
      const c = bytes.slice(at, at + n);
      handed.push(c);
      yield c;
      at += n;
    }
  }

  /** The mixed records (byte strings among them) and enough text that hardly compresses for ~100 chunks. */
  function manyRecords(): { counts: Record<string, number>; list: SnapshotRecord[] } {
    const { counts, list } = mixedRecords();
    for (let i = 0; i < 3000; i++) list.push({ t: "bulk", v: { Path: `b/${i}`, Text: pool.slice(i * 331, i * 331 + 1000) } });
    counts.bulk = 3000;
    return { counts, list };
  }

  test("releases every chunk once used up, and nothing it still needed: records, byte strings and digest come back exactly", async () => {
    const { counts, list } = manyRecords();
    const result: WriteResult = { size: 0, sha256: "", digest: "", records: 0 };
    const bytes = await collect(encodeSnapshot(header(counts), list, result));
    for (let seed = 1; seed <= 40; seed++) {
      const handed: Uint8Array[] = [];
      const reader = readSnapshot(fresh(bytes, seed, handed), { release: true });
      const got: SnapshotRecord[] = [];
      for await (const r of reader.records) got.push(r);
      // A view used after its chunk was released would read as empty: a failed CRC, CBOR or digest.
      expect(reader.result?.sha256).toBe(result.sha256);
      expect(plain(got)).toEqual(plain(list));
      expect(handed.length).toBeGreaterThan(10);
      expect(handed.slice(0, -1).every((c) => c.byteLength === 0)).toBe(true);
    }
  });

  test("every whole chunk ends up released, also when the file fails its checks", async () => {
    const { counts, list } = manyRecords();
    const bytes = await collect(encodeSnapshot(header(counts), list));
    const handed: Uint8Array[] = [];
    await verifySnapshot(fresh(bytes, 7, handed), { release: true });
    const sizes = handed.map((c) => c.byteLength);
    expect(sizes.slice(0, -1).every((n) => n === 0)).toBe(true);

    const bad = bytes.slice();
    bad[Math.floor(bad.length / 2)]! ^= 0x10;
    const handedBad: Uint8Array[] = [];
    await expect(verifySnapshot(fresh(bad, 7, handedBad), { release: true })).rejects.toThrow(/corrupt|checksum|CBOR/);
    expect(handedBad.some((c) => c.byteLength === 0)).toBe(true);
  });

  test("refuses to combine with decompression on the thread pool", () => {
    expect(() => readSnapshot(fresh(new Uint8Array(0), 1, []), { release: true, pipeline: 2 })).toThrow(/inline/);
  });
});
