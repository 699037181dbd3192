// The restore is one pass on every server (issue #23), on three compiled servers: the followers receive
// the upload while the leader does (tailing its spool), verify it and build the new state in the same
// pass, so each one's apply of the committed entry only swaps a state built already; and a flaw the
// leader finds at the very end of a large upload aborts the staging on every follower, leaving nothing.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ClusterServer, useCluster, waitFor, withLogs } from "./harness.ts";
import { expectLeaderServesRestored, getItems, restoreBytes, restoreFile, startClusterIn, writeVarsSnapshot } from "./snapshot_cluster.ts";

/** The file, in each server's data dir, whose content names the restore phase to pause at (restore_phase.ts). */
const PAUSE_FILE = "test-pause-at";
const VARS = 20_000;

const cluster = useCluster("snap-pipe", { start: (c) => startClusterIn(c, { env: { EDGENODE_TEST_PAUSE_FILE: PAUSE_FILE } }) });

beforeAll(async () => {
  // One pass is a feature of this release (features.ts): the leader uses it once the cluster version it
  // commits shortly after forming says every server runs this release.
  const release = (await Bun.file(new URL("../../package.json", import.meta.url)).json()).version as string;
  await waitFor(`the cluster version ${release} to be committed`, 20_000, async () => {
    const leader = await cluster.waitForLeader();
    const self = await leader.get<{ ClusterVersion?: string }>("/v1/agent/self");
    return self.status === 200 && self.body.ClusterVersion === release;
  });
}, 60_000);

function pauseAt(s: ClusterServer, phase: string): void {
  writeFileSync(join(s.dataDir, PAUSE_FILE), phase);
}

const stagedDir = (s: ClusterServer) => join(s.dataDir, "staged");
const logSince = (s: ClusterServer, from: Map<ClusterServer, number>) => s.log().slice(from.get(s) ?? 0);
const marks = () => new Map(cluster.servers.map((s) => [s, s.log().length]));

describe("one pass", () => {
  test(
    "the followers verify and build while the upload arrives; every server's apply only swaps the state built ahead",
    () =>
      withLogs(cluster, async () => {
        const file = join(cluster.dir, "pipe.snap");
        const w = await writeVarsSnapshot(file, "pipe", VARS, 1000, 12);
        const leader = await cluster.waitForLeader();
        const followers = cluster.followers(leader);
        const from = marks();
        pauseAt(leader, "verified");
        let req: ReturnType<typeof restoreFile> | undefined;
        try {
          // Straight to the leader: no follower relays it (a relaying server builds only after answering).
          req = restoreFile(leader, file);
          await waitFor(
            `${leader.name} to pause at verified`,
            60_000,
            () => /paused at restore phase: phase=verified/.test(logSince(leader, from)) || undefined,
            5,
          );
          // The leader has verified and built the file and ended no stream yet: each follower has received
          // the whole file and built its state already, and holds no staged file yet.
          const records = Number(/restore: verified: .* records=(\d+)/.exec(logSince(leader, from))?.[1]);
          expect(records).toBeGreaterThan(VARS);
          for (const f of followers) {
            const built = await waitFor(
              `${f.name} to build the state while receiving`,
              30_000,
              () => /restore: new state built while receiving: id=\S+ bytes=(\d+) records=(\d+)/.exec(logSince(f, from)) ?? undefined,
              5,
            );
            expect({ server: f.name, bytes: Number(built[1]), records: Number(built[2]) }).toEqual({
              server: f.name,
              bytes: w.size,
              records,
            });
            expect(logSince(f, from)).not.toContain("restore: staged here");
            expect(readdirSync(stagedDir(f)).filter((n) => n.endsWith(".snap"))).toEqual([]);
          }
        } finally {
          pauseAt(leader, "");
        }
        const r = await req!;
        expect(r.status).toBe(200);
        const index = (r.body as { Index: number }).Index;
        await expectLeaderServesRestored(leader, { present: "marker/state", items: { tag: "pipe" }, index });
        for (const s of cluster.servers) {
          await waitFor(
            `${s.name} to swap`,
            30_000,
            () => new RegExp(`restore: swapped: index=${index} `).test(logSince(s, from)) || undefined,
            20,
          );
          const log = logSince(s, from);
          // Swapped in the state built ahead, on every server; nobody built or fetched after the commit.
          expect({ server: s.name, prepared: new RegExp(`restore: swapped: index=${index} prepared=true`).test(log) }).toEqual({
            server: s.name,
            prepared: true,
          });
          expect(log).not.toContain("restore: new state built:");
          expect(log).not.toContain("restore: fetched staged snapshot");
          expect(await getItems(s, "marker/state")).toEqual({ tag: "pipe" });
        }
      }),
    180_000,
  );

  test(
    "a follower relaying the upload builds from its file once the upload has passed through; every server swaps a state built ahead",
    () =>
      withLogs(cluster, async () => {
        const file = join(cluster.dir, "relayed.snap");
        await writeVarsSnapshot(file, "relayed", VARS, 1000, 14);
        const leader = await cluster.waitForLeader();
        const [via, other] = cluster.followers(leader) as [ClusterServer, ClusterServer];
        const from = marks();
        const r = await restoreFile(via, file);
        expect(r.status).toBe(200);
        const index = (r.body as { Index: number }).Index;
        for (const s of cluster.servers)
          await waitFor(
            `${s.name} to swap`,
            30_000,
            () => new RegExp(`restore: swapped: index=${index} `).test(logSince(s, from)) || undefined,
            20,
          );
        // The relay holds no state while the upload passes through it (snapshot_memory.test.ts): it builds
        // from its file after; the other follower builds while receiving. All swap what they built ahead.
        expect(logSince(via, from)).toContain("restore: new state built: ");
        expect(logSince(via, from)).not.toContain("restore: new state built while receiving");
        expect(logSince(other, from)).toContain("restore: new state built while receiving");
        for (const s of cluster.servers) {
          expect({
            server: s.name,
            prepared: new RegExp(`restore: swapped: index=${index} prepared=true`).test(logSince(s, from)),
          }).toEqual({
            server: s.name,
            prepared: true,
          });
          expect(logSince(s, from)).not.toContain("restore: fetched staged snapshot");
          expect(await getItems(s, "marker/state")).toEqual({ tag: "relayed" });
        }
      }),
    180_000,
  );

  test(
    "a flaw at the end of a large upload aborts the staging on every follower: nothing staged, nothing built, nothing changed",
    () =>
      withLogs(cluster, async () => {
        const file = join(cluster.dir, "flawed.snap");
        const w = await writeVarsSnapshot(file, "flawed", VARS, 1000, 13);
        const bytes = new Uint8Array(readFileSync(file));
        // The last byte of the SHA-256 trailer: every frame checks, only the whole file's digest fails.
        bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
        const leader = await cluster.waitForLeader();
        await leader.putVar("kept/k", { v: "before" });
        const followers = cluster.followers(leader);
        const from = marks();
        // Staged files of the restore before may still be there (until the periodic cleanup): not this one's.
        const before = new Map(cluster.servers.map((s) => [s, new Set(readdirSync(stagedDir(s)))]));
        const r = await restoreBytes(leader, bytes);
        expect(r.status).toBe(400);
        expect(r.text).toContain("checksum mismatch");
        for (const f of followers) {
          // Each follower had the upload streaming in (as far as its own build had got: it reads at its own
          // pace) when the leader found the flaw, and kept nothing.
          const failed = await waitFor(
            `${f.name} to drop its staging`,
            30_000,
            () => /restore: staging here failed; nothing kept: id=\S+ bytes=(\d+) error="?([^\n]*)/.exec(logSince(f, from)) ?? undefined,
            20,
          );
          expect(Number(failed[1])).toBeGreaterThan(0);
          expect(Number(failed[1])).toBeLessThanOrEqual(w.size);
          expect(failed[2]).toContain("checksum mismatch");
          expect(logSince(f, from)).not.toContain("restore: staged here");
          expect(logSince(f, from)).not.toContain("restore: new state built");
        }
        for (const s of cluster.servers) {
          await waitFor(
            `${s.name} to hold no staged or temp file of this restore`,
            10_000,
            () => readdirSync(stagedDir(s)).every((n) => before.get(s)!.has(n)) || undefined,
            20,
          );
          expect(await waitFor(`${s.name} to serve kept/k`, 10_000, () => getItems(s, "kept/k"), 50)).toEqual({ v: "before" });
          expect(await getItems(s, "marker/state")).not.toEqual({ tag: "flawed" });
        }
      }),
    180_000,
  );
});
