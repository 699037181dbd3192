// A crash tears only what was written and not synced: bytes of a file outside its unsynced
// writes come back as they were synced, whatever the seed (a slot file's other copy depends on it).
import { expect, test } from "bun:test";
import { SimDisk } from "../../src/storage/sim_disk.ts";
import { freshSeeds, replayCommand } from "./fresh_seeds.ts";
import { seeded } from "./rng.ts";

const FILE = "test/sim/sim_disk_tear.test.ts";

/** One synced file, one unsynced write at a seeded place, a crash: bytes outside the write are intact. */
async function tearOnce(seed: number, replay: (seed: number) => string): Promise<void> {
  const r = seeded(seed);
  const disk = new SimDisk({ manualSync: true });
  const f = disk.open("/d/f", true);
  const old = new Uint8Array(256).map(() => 1 + Math.floor(r() * 255));
  f.write(old, 0);
  const synced = f.sync();
  disk.completeSyncs();
  await synced;
  await disk.syncDir("/d");
  const off = Math.floor(r() * 200);
  const len = 1 + Math.floor(r() * 40);
  f.write(
    new Uint8Array(len).map(() => Math.floor(r() * 256)),
    off,
  );
  void f.sync(); // never completed: the crash comes first
  disk.crash(r);
  const g = disk.open("/d/f", false);
  const now = new Uint8Array(g.size());
  g.read(now, 0);
  for (let i = 0; i < old.length; i++) {
    if (i >= off && i < off + len) continue;
    if (now[i] !== old[i]) {
      console.log(`FAIL seed ${seed}; replay: ${replay(seed)}`);
      throw new Error(`seed ${seed}: byte ${i} outside the write at ${off}+${len} changed ${old[i]} -> ${now[i]}; replay: ${replay(seed)}`);
    }
  }
  expect(now.length).toBeGreaterThanOrEqual(old.length);
}

test("a torn write never changes bytes outside the unsynced range: seeds 1..2000", async () => {
  for (let seed = 1; seed <= 2000; seed++) await tearOnce(seed, (s) => replayCommand(FILE, s));
});

test("a torn write never changes bytes outside the unsynced range: fresh seeds from the clock", async () => {
  const fresh = freshSeeds("torn write", FILE, 2000);
  for (let seed = fresh.base; seed < fresh.base + fresh.count; seed++) await tearOnce(seed, (s) => fresh.replay(s));
});
