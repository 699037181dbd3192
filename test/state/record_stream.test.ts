import { describe, expect, test } from "bun:test";
import { encode } from "../../src/lib/codec.ts";
import { decodeRecordStream, encodeRecordStream, MAX_RECORD_BYTES } from "../../src/state/record_stream.ts";
import { RestoreError } from "../../src/state/restore.ts";
import { StateStore } from "../../src/state/state_store.ts";
import type { SnapshotRecord } from "../../src/state/tables.ts";
import { withSeedAsync } from "./seeded_random.ts";

function sampleStore(n: number): StateStore {
  const s = new StateStore();
  for (let i = 1; i <= n; i++)
    s.apply(i, { op: "var.put", path: `svc/${i % 97}/${i}`, items: { v: "x".repeat(i % 300), n: String(i) }, now: i });
  s.apply(n + 1, { op: "var.put", path: "huge", items: { v: "h".repeat(60_000) }, now: 1 });
  return s;
}

/** Re-cut a byte stream at random points, including 1-byte pieces. */
function* recut(chunks: Iterable<Uint8Array>, rand: () => number): Generator<Uint8Array> {
  for (const c of chunks) {
    let at = 0;
    while (at < c.length) {
      const size = rand() < 0.3 ? 1 : 1 + Math.floor(rand() * 5000);
      yield c.slice(at, at + size);
      at += size;
    }
  }
}

async function collect(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("record stream", () => {
  test("round trips through chunks cut anywhere, into an equal restored store", async () => {
    await withSeedAsync("record stream recut", async (rand) => {
      const s = sampleStore(2000);
      const v = s.view();
      const chunks = [...encodeRecordStream(v.records(), 16 * 1024)];
      // Chunks are bounded except where one record is bigger than the chunk size.
      for (const c of chunks) expect(c.length <= 16 * 1024 || c.length < 70_000).toBe(true);
      const restored = await StateStore.restore(decodeRecordStream(recut(chunks, rand)), 5000);
      expect([...restored.view().records()]).toEqual([...v.records()]);
      const fromBytes = await StateStore.restoreFromBytes(recut(chunks, rand), 5000);
      expect([...fromBytes.view().records()]).toEqual([...v.records()]);
      expect(fromBytes.tableIndex("vars")).toBe(5000);
    });
  });

  test("restoreFromBytes refuses a truncated stream and a malformed record", async () => {
    const all = Buffer.concat([...encodeRecordStream(sampleStore(20).view().records())]);
    await expect(StateStore.restoreFromBytes([all.subarray(0, all.length - 2)], 9)).rejects.toThrow(/stream ends inside a record/);
    const bad = Buffer.concat([...encodeRecordStream([{ t: "vars", v: { Path: "a//b" } } as SnapshotRecord])]);
    await expect(StateStore.restoreFromBytes([bad], 9)).rejects.toThrow(/record 1 \(table vars\)/);
  });

  test("a cut-off tail is an error, not a shorter state", async () => {
    const chunks = [...encodeRecordStream(sampleStore(50).view().records())];
    const all = Buffer.concat(chunks);
    for (const cut of [1, 3, 5, all.length - 1]) {
      const err = await collect(decodeRecordStream([all.subarray(0, cut)])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RestoreError);
      expect((err as Error).message).toMatch(/stream ends inside a record/);
    }
  });

  test("an oversized or zero length and bad CBOR are refused with the byte offset", async () => {
    const good = Buffer.concat([...encodeRecordStream([{ t: "vars", v: { a: 1 } } as SnapshotRecord])]);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(MAX_RECORD_BYTES + 1);
    await expect(collect(decodeRecordStream([good, huge]))).rejects.toThrow(
      new RegExp(`record at byte ${good.length} claims ${MAX_RECORD_BYTES + 1} bytes`),
    );
    await expect(collect(decodeRecordStream([Buffer.alloc(8)]))).rejects.toThrow(/claims 0 bytes/);
    const junk = Buffer.from([0, 0, 0, 2, 0xff, 0xff]);
    await expect(collect(decodeRecordStream([junk]))).rejects.toThrow(/not valid CBOR/);
  });

  test("an empty stream is no records", async () => {
    expect(await collect(decodeRecordStream([]))).toEqual([]);
    expect([...encodeRecordStream([])]).toEqual([]);
  });

  test("each frame is the codec's CBOR of the record", () => {
    const rec: SnapshotRecord = { t: "acl_meta", v: { Key: "bootstrap", BootstrapIndex: 3, BootstrapTime: 9 } };
    const [chunk] = [...encodeRecordStream([rec])];
    const body = encode(rec);
    expect(chunk!.length).toBe(4 + body.length);
    expect(Buffer.from(chunk!.subarray(4))).toEqual(Buffer.from(body));
  });
});
