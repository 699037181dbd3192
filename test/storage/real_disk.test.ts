// RealDisk's sync through the fdatasync worker: data syncs, a failing fdatasync surfaces as the same
// fatal DiskError (with errno) as an fs call's failure, and the worker serves many files at once.
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskError } from "../../src/storage/disk_error.ts";
import { FsyncWorker } from "../../src/storage/fsync_worker.ts";
import { fsyncWorker, RealDisk } from "../../src/storage/real_disk.ts";

// The worker is RealDisk's option (the default is async fs.fdatasync); these tests exercise it.
const realDisk = new RealDisk({ fdatasync: "worker" });

const root = mkdtempSync(join(tmpdir(), "edgenode-realdisk-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("sync resolves after the data is written, through the worker", async () => {
  const f = realDisk.open(join(root, "a"), true);
  f.write(new Uint8Array([1, 2, 3]), 0);
  await f.sync();
  expect(fsyncWorker.fallenBack).toBe(false);
  f.close();
  expect([...readFileSync(join(root, "a"))]).toEqual([1, 2, 3]);
});

test("concurrent syncs on many files all resolve", async () => {
  const files = Array.from({ length: 20 }, (_, i) => realDisk.open(join(root, `m${i}`), true));
  for (const [i, f] of files.entries()) f.write(new Uint8Array([i]), 0);
  await Promise.all(files.flatMap((f) => [f.sync(), f.sync()]));
  for (const f of files) f.close();
  expect(fsyncWorker.fallenBack).toBe(false);
});

test("an fdatasync failure in the worker is a DiskError naming the file and errno", async () => {
  // A FIFO opens read-write but cannot be synced: fdatasync fails with EINVAL on the worker thread.
  // (A closed fd would do too, but its number may be reused by whatever the process opens next.)
  const fifo = join(root, "b.fifo");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  const f = realDisk.open(fifo, false);
  const err = await f.sync().then(
    () => undefined,
    (e: unknown) => e,
  );
  f.close();
  expect(err).toBeInstanceOf(DiskError);
  expect((err as DiskError).errno).toBe("EINVAL");
  expect((err as DiskError).message).toContain("fdatasync");
  expect((err as DiskError).message).toContain(fifo);
  expect(fsyncWorker.fallenBack).toBe(false);
});

test("a terminated worker restarts on the next sync; outstanding syncs still settle", async () => {
  const w = new FsyncWorker();
  const f = realDisk.open(join(root, "c"), true);
  f.write(new Uint8Array([9]), 0);
  const p = Promise.all([w.sync(fdOf(join(root, "c"))), w.sync(fdOf(join(root, "c")))]);
  w.terminate();
  await p;
  await w.sync(fdOf(join(root, "c")));
  w.terminate();
  f.close();
});

test("a worker that dies falls back to async fdatasync: pending and later syncs settle, errors stay fs errors", async () => {
  const reasons: string[] = [];
  const w = new FsyncWorker((r) => reasons.push(r), `throw new Error("worker boom");`);
  realDisk.open(join(root, "d"), true).close();
  const fd = fdOf(join(root, "d"));
  await Promise.all([w.sync(fd), w.sync(fd)]); // posted before the worker's failure is known
  expect(w.fallenBack).toBe(true);
  expect(reasons.length).toBe(1);
  expect(reasons[0]).toContain("async fs.fdatasync");
  await w.sync(fd);
  const err = await w.sync(1 << 30).then(
    () => undefined,
    (e: unknown) => e as { code?: string },
  );
  expect(err?.code).toBe("EBADF");
  w.terminate();
});

const fds: number[] = [];
afterAll(() => {
  for (const fd of fds) closeSync(fd);
});
function fdOf(path: string): number {
  const fd = openSync(path, "r+");
  fds.push(fd);
  return fd;
}
