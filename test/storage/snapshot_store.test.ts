// Snapshot store: streaming write and verified read, retention, damaged snapshots skipped for the
// next older one, and a SIGKILL in the middle of a write leaving the previous snapshot usable.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { CorruptError } from "../../src/storage/disk_error.ts";
import { SnapshotStore } from "../../src/storage/snapshot_store.ts";
import { rng } from "./fixtures/entries.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-snap-"));
const children = new Set<Subprocess>();
afterAll(() => {
  for (const c of children) c.kill(9);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const fresh = () => join(root, `s${n++}`);
const quiet = () => {};
const cfg = { servers: [{ id: "a", address: "h:1", voter: true }] };

async function save(store: SnapshotStore, index: number, bytes: Uint8Array, chunk = 10_000) {
  const sink = store.create({ index, term: 1, config: cfg });
  for (let o = 0; o < bytes.length; o += chunk) await sink.write(bytes.subarray(o, o + chunk));
  return sink.close();
}
async function readAll(store: SnapshotStore, id: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of store.openReader(id)) parts.push(c.slice());
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}
function data(seed: number, len: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
}

describe("snapshot store", () => {
  test("write, list, read back verified; retain newest 2; reopen", async () => {
    const dir = fresh();
    const store = await SnapshotStore.open(dir, { log: quiet });
    const a = data(1, 150_000);
    const s1 = await save(store, 10, a);
    expect(s1.size).toBe(a.length);
    expect(s1.sha256).toBe(new Bun.CryptoHasher("sha256").update(a).digest("hex"));
    expect(await readAll(store, s1.id)).toEqual(a);
    await save(store, 20, data(2, 1000));
    const s3 = await save(store, 30, data(3, 0));
    expect(store.list().map((s) => s.index)).toEqual([30, 20]);
    expect(existsSync(join(dir, s1.id))).toBe(false);
    const again = await SnapshotStore.open(dir, { log: quiet });
    expect(again.latest()?.id).toBe(s3.id);
    expect(again.list().map((s) => s.index)).toEqual([30, 20]);
    expect(again.path(s3.id)).toBe(join(dir, s3.id, "state.bin"));
  });

  test("a check that fails at close stores nothing and leaves no temporary directory; one that passes stores it", async () => {
    const dir = fresh();
    const store = await SnapshotStore.open(dir, { retain: 2, log: quiet });
    const bytes = data(7, 30_000);
    const sink = store.create({ index: 5, term: 1, config: cfg });
    await sink.write(bytes);
    let seen = -1;
    await expect(
      sink.close(async (path) => {
        seen = readFileSync(path).length;
        throw new Error("not the snapshot it claims to be");
      }),
    ).rejects.toThrow("not the snapshot it claims to be");
    // The check read the whole, synced file.
    expect(seen).toBe(bytes.length);
    expect(store.list()).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
    const again = store.create({ index: 6, term: 1, config: cfg });
    await again.write(bytes);
    const ok = await again.close(async () => {});
    expect(store.latest()?.id).toBe(ok.id);
    expect(await readAll(store, ok.id)).toEqual(bytes);
  });

  test("a sink given its writer's digest records it without hashing; a wrong one is refused at every read", async () => {
    const dir = fresh();
    const store = await SnapshotStore.open(dir, { retain: 3, log: quiet });
    const bytes = data(11, 40_000);
    const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    const put = async (index: number, given: { size: number; sha256: string }) => {
      const sink = store.create({ index, term: 1, config: cfg }, { digestGiven: true });
      for (let o = 0; o < bytes.length; o += 7_000) await sink.write(bytes.subarray(o, o + 7_000));
      return sink.close(undefined, given);
    };
    const ok = await put(5, { size: bytes.length, sha256 });
    expect(ok.sha256).toBe(sha256);
    expect(await readAll(store, ok.id)).toEqual(bytes);
    const wrong = await put(6, { size: bytes.length, sha256: "0".repeat(64) });
    await expect(readAll(store, wrong.id)).rejects.toBeInstanceOf(CorruptError);
    expect((await store.latestVerified())?.id).toBe(ok.id);
  });

  test("cancel leaves nothing; damaged snapshots are skipped for the older one", async () => {
    const dir = fresh();
    const warnings: string[] = [];
    const store = await SnapshotStore.open(dir, { log: (_l, m) => warnings.push(m) });
    const old = await save(store, 5, data(5, 70_000));
    const sink = store.create({ index: 6, term: 1, config: cfg });
    await sink.write(data(6, 100));
    await sink.cancel();
    expect(readdirSync(dir)).toEqual([old.id]);
    const neu = await save(store, 7, data(7, 70_000));

    // A flipped byte: latest() (size check) still offers it, the full check skips it.
    const p = store.path(neu.id);
    const b = readFileSync(p);
    b[1234] = (b[1234] as number) ^ 1;
    writeFileSync(p, b);
    expect(store.latest()?.id).toBe(neu.id);
    await expect(readAll(store, neu.id)).rejects.toThrow(CorruptError);
    expect((await store.latestVerified())?.id).toBe(old.id);
    expect(warnings.some((w) => w.includes("SHA-256"))).toBe(true);

    // A truncated file fails even the cheap check.
    truncateSync(p, 100);
    expect(store.latest()?.id).toBe(old.id);
    await expect(readAll(store, neu.id)).rejects.toThrow(/100 bytes, expected 70000/);
  });

  test("SIGKILL in the middle of a write leaves the previous snapshot usable", async () => {
    const dir = fresh();
    const store = await SnapshotStore.open(dir, { log: quiet });
    const prev = await save(store, 1, data(1, 50_000));
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "crash_child.ts"), "snap", dir, "99"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    children.add(child);
    const reader = child.stdout.getReader();
    let out = "";
    const deadline = Date.now() + 15_000;
    while (!out.includes("W 20") && Date.now() < deadline) {
      const res = await reader.read();
      if (res.done) break;
      out += new TextDecoder().decode(res.value);
    }
    expect(out).toContain("W 20"); // mid-write, not done
    expect(out).not.toContain("D");
    child.kill(9);
    await child.exited;
    children.delete(child);
    expect(readdirSync(dir).some((f) => f.endsWith(".tmp"))).toBe(true);
    const reopened = await SnapshotStore.open(dir, { log: quiet });
    expect(readdirSync(dir)).toEqual([prev.id]);
    expect(reopened.latest()?.id).toBe(prev.id);
    expect((await reopened.latestVerified())?.id).toBe(prev.id);
    expect(await readAll(reopened, prev.id)).toEqual(data(1, 50_000));
  });
});
