// A server applying a committed restore without its staged file fetches it from a peer (restore_apply.ts):
// each failed round is logged and retried, and the tries are bounded — past the fetch deadline the
// server stops (fatal) instead of retrying forever or serving the state the cluster left behind.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "../../src/lib/codec.ts";
import { EdgeError } from "../../src/lib/errors.ts";
import { EntryType } from "../../src/raft/storage.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { Fsm, type RestoreOp } from "../../src/server/fsm.ts";
import { RestoreCoordinator, type RestoreHost } from "../../src/server/snapshot_restore.ts";
import { StagedSnapshots } from "../../src/server/staged_snapshots.ts";
import { fileChunks } from "../../src/snapshot/reader.ts";
import type { WriteResult } from "../../src/snapshot/writer.ts";
import type { RpcStream } from "../../src/transport/rpc_stream.ts";
import { writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-fetch-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const file = join(root, "source.snap");
let source: WriteResult | undefined;
let n = 0;

/** A server whose one peer fails `failures` fetches (then serves the file), with short fetch bounds. */
async function setup(failures: number, bounds: { fetchDeadlineMs: number; fetchRetryMs: number }) {
  source ??= await writeVarsSnapshot(file, "f", 500, 100);
  const lines: string[] = [];
  const log = createLogger({ level: "DEBUG", write: (l) => lines.push(l) });
  const staged = new StagedSnapshots(join(root, `d${n++}`), log);
  await staged.init();
  const fatal: unknown[] = [];
  const fsm = new Fsm(
    () => "global",
    () => "",
  );
  const before = fsm.state;
  const swapped = () => fsm.state !== before;
  let opens = 0;
  const host = {
    log,
    dataDir: () => root,
    selfId: () => "me",
    servers: () => [
      { id: "me", address: "127.0.0.1:1", voter: true },
      { id: "peer", address: "127.0.0.1:2", voter: true },
    ],
    isLeader: () => false,
    applied: () => 0,
    lastSnapshotIndex: () => 0,
    takeSnapshot: async () => ({}),
    call: async () => ({ Applied: 0 }),
    openStream: async () => {
      if (opens++ < failures) throw new EdgeError("UNAVAILABLE", "peer is down");
      return Object.assign(fileChunks(file), { abort: () => {} }) as unknown as RpcStream;
    },
    fatal: (e: unknown) => fatal.push(e),
  } as unknown as RestoreHost;
  const rc = new RestoreCoordinator(host, staged, new Map(), bounds);
  rc.register(fsm);
  const op: RestoreOp = { op: "restore", snapshotId: `t1-${n}-1`, sha256: source.sha256, size: source.size, now: Date.now() };
  const retries = () => lines.filter((l) => l.includes("restore: no usable staged snapshot yet; retrying")).length;
  return { rc, fsm, op, fatal, swapped, retries, opens: () => opens, staged };
}

describe("fetching a staged file for a committed restore", () => {
  test("a peer that fails at first is retried, each retry logged, and the file fetched and applied", async () => {
    const { fsm, op, fatal, swapped, retries, staged } = await setup(2, { fetchDeadlineMs: 10_000, fetchRetryMs: 20 });
    // The committed entry goes from the state machine to the restore's apply (its server-op registry).
    expect(await fsm.apply({ index: 42, term: 1, type: EntryType.Normal, data: encode(op) })).toEqual({ Index: 42 });
    expect(retries()).toBe(2);
    expect(swapped()).toBe(true);
    expect(staged.has(op.snapshotId)).toBe(true);
    expect(fatal).toEqual([]);
  });

  test("a file this server staged (its digest known as written, not hashed again) is built from; a byte flipped in it on disk since is still refused and the file fetched again", async () => {
    for (const damage of [false, true]) {
      const { fsm, op, fatal, swapped, retries, opens, staged } = await setup(0, { fetchDeadlineMs: 10_000, fetchRetryMs: 20 });
      await staged.receive(op.snapshotId, fileChunks(file), { sha256: op.sha256, size: op.size });
      expect(staged.hashedAsWritten(op.snapshotId)).toBe(op.sha256);
      if (damage) {
        const bytes = readFileSync(staged.path(op.snapshotId));
        const at = Math.floor(bytes.length / 2);
        bytes[at] = (bytes[at] as number) ^ 0x01;
        writeFileSync(staged.path(op.snapshotId), bytes);
      }
      expect(await fsm.apply({ index: 44, term: 1, type: EntryType.Normal, data: encode(op) })).toEqual({ Index: 44 });
      expect(swapped()).toBe(true);
      expect(fatal).toEqual([]);
      // Damaged: the build refused it (a frame's CRC32), dropped it and fetched a good copy from the peer.
      expect(retries()).toBe(damage ? 1 : 0);
      expect(opens()).toBe(damage ? 1 : 0);
    }
  });

  test("no peer giving the file within the deadline stops the server instead of retrying forever", async () => {
    const { rc, op, fatal, swapped, retries, opens } = await setup(Number.POSITIVE_INFINITY, { fetchDeadlineMs: 300, fetchRetryMs: 20 });
    const t0 = performance.now();
    const err = await rc.applier.apply(43, op).then(
      () => undefined,
      (e: unknown) => e as EdgeError,
    );
    const ms = performance.now() - t0;
    expect(err?.code).toBe("UNAVAILABLE");
    expect(err?.message).toContain(`no usable copy of staged snapshot ${op.snapshotId} within 300ms`);
    expect(fatal).toEqual([err]);
    expect(swapped()).toBe(false);
    // Bounded in time, and every failed round was logged before the next.
    expect(ms).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(5_000);
    expect(retries()).toBeGreaterThanOrEqual(2);
    // Each round (one try of the one peer) was logged as a retry but the last, which met the deadline
    // before or after its try.
    expect(Math.abs(opens() - retries())).toBeLessThanOrEqual(1);
  });
});
