// The simulated disk: the real Wal and StableStore on it lose exactly the unsynced writes in a
// crash (torn or not), never an acknowledged one; disk faults stop the log with a DiskError.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { DiskError } from "../../src/storage/disk_error.ts";
import { SimDisk, SimStableStore, SimWal } from "../../src/storage/sim_disk.ts";
import { entryProblem, makeEntries, rng } from "./fixtures/entries.ts";

setDefaultTimeout(30_000);

describe("sim disk", () => {
  test("random crashes with torn writes never lose an acknowledged batch", async () => {
    const seed = Number(process.env.EDGENODE_SEED ?? Date.now() % 1_000_000);
    const r = rng(seed);
    const disk = new SimDisk({ manualSync: true });
    let acked = 0;
    for (let round = 0; round < 150; round++) {
      const w = await openWhileSyncing(disk, () => SimWal.open(disk, "/n1", { segmentBytes: 8192 }));
      const last = w.lastIndex();
      try {
        expect(last).toBeGreaterThanOrEqual(acked);
        for (const e of w.entries(1, last + 1, Number.MAX_SAFE_INTEGER)) expect(entryProblem(e)).toBeUndefined();
      } catch (e) {
        throw new Error(`seed ${seed} round ${round}: ${e}`);
      }
      acked = last;
      // Append a few batches; complete the syncs of some, then crash with one in flight.
      const k = 1 + Math.floor(r() * 4);
      for (let b = 0; b < k; b++) {
        const p = w.append(makeEntries(w.lastIndex() + 1, 1 + Math.floor(r() * 20), 1));
        p.catch(() => {}); // an append cut off by the crash fails with a dead handle
        if (b < k - 1 || r() < 0.5) {
          await settle(disk, p);
          acked = w.lastIndex();
        }
      }
      disk.crash(r);
    }
  });

  test("stable store keeps the last acknowledged hard state through torn writes", async () => {
    const seed = Number(process.env.EDGENODE_SEED ?? Date.now() % 1_000_000);
    const r = rng(seed);
    const disk = new SimDisk({ manualSync: true });
    let term = 0;
    for (let round = 0; round < 200; round++) {
      const s = await openWhileSyncing(disk, () => SimStableStore.open(disk, "/n1"));
      const got = s.get().hardState.term;
      if (got !== term && got !== term + 1) throw new Error(`seed ${seed} round ${round}: term ${got}, acknowledged ${term}`);
      term = got;
      const p = s.set({ hardState: { term: term + 1, vote: "x", commit: 0 } });
      p.catch(() => {});
      if (r() < 0.5) {
        await settle(disk, p);
        term++;
      }
      disk.crash(r);
    }
  });

  test("ENOSPC on append: clear DiskError, log stops, nothing acknowledged lost", async () => {
    const disk = new SimDisk();
    const w = await SimWal.open(disk, "/n1");
    await w.append(makeEntries(1, 5, 1));
    disk.injectFault("write", "ENOSPC");
    const err = await w.append(makeEntries(6, 5, 1)).catch((e) => e);
    expect(err).toBeInstanceOf(DiskError);
    expect(err.code).toBe("DISK");
    expect(err.message).toMatch(/out of disk space/);
    await expect(w.append(makeEntries(6, 1, 1))).rejects.toThrow(/stopped after an earlier disk error/);
    expect(w.lastIndex()).toBe(5);
    disk.crash();
    const again = await SimWal.open(disk, "/n1");
    expect(again.lastIndex()).toBe(5);
  });

  test("fsync failure is fatal, not retried", async () => {
    const disk = new SimDisk();
    const w = await SimWal.open(disk, "/n1");
    disk.injectFault("sync", "EIO");
    await expect(w.append(makeEntries(1, 1, 1))).rejects.toThrow(/EIO/);
    await expect(w.compact(0)).rejects.toThrow(DiskError);
    expect(w.lastIndex()).toBe(0);
  });
});

/** Resolve p while completing the disk's pending syncs (manualSync mode). */
async function settle<T>(disk: SimDisk, p: Promise<T>): Promise<T> {
  let done = false;
  const q = p.finally(() => {
    done = true;
  });
  for (let i = 0; i < 10_000 && !done; i++) {
    disk.completeSyncs();
    await Promise.resolve();
    await new Promise((res) => setImmediate(res));
  }
  expect(done).toBe(true);
  return q;
}
const openWhileSyncing = <T>(disk: SimDisk, open: () => Promise<T>) => settle(disk, open());
