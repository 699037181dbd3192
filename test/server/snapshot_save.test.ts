// Where a save is made (snapshot_save.ts): on the server asked, after its read barrier; when that barrier
// does not pass within LOCAL_BARRIER_MS, or fails, the save goes to the leader as it always did.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeError } from "../../src/lib/errors.ts";
import { Placement } from "../../src/server/placement.ts";
import { LOCAL_BARRIER_MS, type SaveHost, SnapshotSaver } from "../../src/server/snapshot_save.ts";

const dir = mkdtempSync(join(tmpdir(), "edgenode-save-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A follower whose barrier settles as `barrier` does; a send towards the leader is recorded and refused. */
function follower(barrier: () => Promise<number>) {
  const opened: { addr: string; method: string; at: number }[] = [];
  const host = {
    cfg: { data_dir: dir },
    placement: new Placement({
      region: () => "global",
      federation: () => undefined,
      isLeader: () => false,
      leaderAddress: () => "10.0.0.1:4647",
      waitForLeader: async () => true,
    }),
    driver: { readBarrier: barrier },
    pool: {
      async openStream(addr: string, method: string) {
        opened.push({ addr, method, at: performance.now() });
        throw new EdgeError("RPC", "sent to the leader (stand-in)");
      },
    },
    authorizeCall: async () => {},
  } as unknown as SaveHost;
  return { saver: new SnapshotSaver(host), opened };
}

test("a barrier that does not pass in time hands the save to the leader", async () => {
  const { saver, opened } = follower(() => new Promise<number>(() => {}));
  const t0 = performance.now();
  await expect(saver.save({})).rejects.toThrow("sent to the leader (stand-in)");
  expect(opened.map((o) => `${o.method}@${o.addr}`)).toEqual(["Snapshot.Save@10.0.0.1:4647"]);
  // Not before the barrier had its time.
  expect(opened[0]!.at - t0).toBeGreaterThanOrEqual(LOCAL_BARRIER_MS - 50);
});

test("a barrier that fails (no leader known yet) hands the save to the leader at once", async () => {
  const { saver, opened } = follower(() => Promise.reject(new EdgeError("NO_LEADER", "no leader")));
  const t0 = performance.now();
  await expect(saver.save({})).rejects.toThrow("sent to the leader (stand-in)");
  expect(opened).toHaveLength(1);
  expect(opened[0]!.at - t0).toBeLessThan(LOCAL_BARRIER_MS);
});
