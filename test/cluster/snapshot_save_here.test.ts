// A save through a follower is made by that follower after a read barrier: the file holds every write
// acknowledged before the request, even one the follower had not yet received when it was asked, and
// the leader encodes nothing.
import { expect, test } from "bun:test";
import { readSnapshot } from "../../src/snapshot/reader.ts";
import { withLogs, useCluster } from "./harness.ts";

const cluster = useCluster("save-here", { leaderMs: false });

async function* chunksOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += 65536) yield bytes.subarray(i, i + 65536);
}

const saves = (log: string) => log.match(/snapshot save: /g)?.length ?? 0;

test(
  "a follower frozen while a write commits serves a save holding that write, encoded by itself",
  () =>
    withLogs(cluster, async () => {
      const leader = await cluster.waitForLeader(15_000);
      const follower = cluster.followers(leader)[0]!;
      await leader.putVar("here/warm", { v: "0" });
      const leaderSaves = saves(leader.log());
      const followerSaves = saves(follower.log());
      // Frozen, the follower misses the append: the write commits on the other two. The save is asked
      // before it thaws, so the request waits beside the append it has not read yet.
      follower.proc!.kill("SIGSTOP");
      let acked: number;
      let asked: Promise<Response>;
      try {
        acked = (await leader.putVar("here/x", { v: "after-freeze" })).ModifyIndex;
        asked = fetch(`${follower.url}/v1/operator/snapshot`, { signal: AbortSignal.timeout(20_000) });
        // The request's bytes reach the frozen server's socket (the kernel accepts for it) in a few ms.
        await Bun.sleep(200);
      } finally {
        follower.proc!.kill("SIGCONT");
      }
      const r = await asked;
      expect(r.status).toBe(200);
      const bytes = new Uint8Array(await r.arrayBuffer());
      expect(r.headers.get("digest")).toBe(`sha-256=${new Bun.CryptoHasher("sha256").update(bytes).digest("base64")}`);
      const index = Number(r.headers.get("x-edgenode-index"));
      expect(index).toBeGreaterThanOrEqual(acked);
      let found: unknown;
      for await (const rec of readSnapshot(chunksOf(bytes)).records) {
        const v = rec.v as { Path?: string; Items?: { v?: string } };
        if (rec.t === "vars" && v.Path === "here/x") found = v.Items?.v;
      }
      expect(found).toBe("after-freeze");
      // Made where it was asked: the follower logged the save, the leader did not.
      expect(saves(follower.log())).toBe(followerSaves + 1);
      expect(saves(leader.log())).toBe(leaderSaves);
    }),
  60_000,
);
