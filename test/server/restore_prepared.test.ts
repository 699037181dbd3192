// A staging peer's RestoreCoordinator, on its own: after staging a file it builds the new state ahead, and
// lets it go when the leader gives the restore up (Snapshot.Unstage) or when no entry applies it within the
// hold time; a staging that ends after the restore was given up keeps nothing; an applied restore's file
// cannot be unstaged.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/lib/logger.ts";
import { fileChunks } from "../../src/snapshot/reader.ts";
import type { WriteResult } from "../../src/snapshot/writer.ts";
import { RestoreCoordinator, type RestoreHost } from "../../src/server/snapshot_restore.ts";
import { StagedSnapshots } from "../../src/server/staged_snapshots.ts";
import type { RpcStream } from "../../src/transport/rpc_stream.ts";
import { writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";
import { waitFor } from "../support/wait.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-prepared-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const file = join(root, "source.snap");
let source: WriteResult | undefined;
let n = 0;

async function setup(opts: { preparedTtlMs?: number; applied?: Map<string, number> } = {}) {
  source ??= await writeVarsSnapshot(file, "p", 2_000, 200);
  const lines: string[] = [];
  const log = createLogger({ level: "DEBUG", write: (l) => lines.push(l) });
  const staged = new StagedSnapshots(join(root, `d${n++}`), log);
  await staged.init();
  // The coordinator's staging side touches only the server's logger.
  const server = { log } as unknown as RestoreHost;
  const rc = new RestoreCoordinator(server, staged, opts.applied ?? new Map(), { preparedTtlMs: opts.preparedTtlMs });
  const stage = (id: string) => {
    // What the leader's staging stream looks like to the peer: the file's bytes, then end().
    const stream = Object.assign(fileChunks(file), { end: async () => {} }) as unknown as RpcStream;
    return rc.receiveStage({ id, sha256: source!.sha256, size: source!.size }, stream);
  };
  const logged = (what: string) => lines.some((l) => l.includes(what));
  return { rc, staged, stage, logged, lines };
}

describe("RestoreCoordinator on a staging peer", () => {
  test("builds the staged state ahead and lets it go when no entry applies it within the hold time", async () => {
    const { rc, staged, stage, logged } = await setup({ preparedTtlMs: 300 });
    await stage("t1-10-1");
    expect(staged.has("t1-10-1")).toBe(true);
    expect(rc.preparedId).toBe("t1-10-1");
    await waitFor(() => logged("restore: new state built"), 4_000, "the state to be built");
    await waitFor(() => rc.preparedId === undefined, 4_000, "the built state to be let go");
    expect(logged("letting go of the state built ahead")).toBe(true);
    // The file stays: should the entry apply after all, the state is built from it.
    expect(staged.has("t1-10-1")).toBe(true);
  });

  test("with the default hold time the built state is kept", async () => {
    const { rc, stage, logged } = await setup();
    await stage("t1-11-1");
    await waitFor(() => logged("restore: new state built"), 4_000, "the state to be built");
    expect(rc.preparedId).toBe("t1-11-1");
    expect(logged("letting go")).toBe(false);
    await rc.unstage({ id: "t1-11-1" });
  });

  test("Snapshot.Unstage drops the file and the built state at once", async () => {
    const { rc, staged, stage, logged } = await setup();
    await stage("t1-12-1");
    expect(await rc.unstage({ id: "t1-12-1" })).toEqual({ Dropped: true });
    expect(rc.preparedId).toBeUndefined();
    expect(staged.has("t1-12-1")).toBe(false);
    expect(readdirSync(staged.dir)).toEqual([]);
    expect(logged("dropped a restore the leader gave up on")).toBe(true);
  });

  test("a staging that ends after the leader gave the restore up keeps nothing", async () => {
    const { rc, staged, stage } = await setup();
    expect(await rc.unstage({ id: "t1-13-1" })).toEqual({ Dropped: false });
    await expect(stage("t1-13-1")).rejects.toThrow("gave up on restore t1-13-1");
    expect(rc.preparedId).toBeUndefined();
    expect(readdirSync(staged.dir)).toEqual([]);
  });

  test("a restore applied here cannot be unstaged: its file stays", async () => {
    const { rc, staged, stage } = await setup({ applied: new Map([["t1-14-1", 14]]) });
    await stage("t1-14-1");
    await expect(rc.unstage({ id: "t1-14-1" })).rejects.toThrow("was applied here");
    expect(staged.has("t1-14-1")).toBe(true);
  });

  test("the hold time must be a positive integer", async () => {
    await expect(setup({ preparedTtlMs: 0 })).rejects.toThrow("preparedTtlMs");
  });
});
