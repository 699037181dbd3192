// Snapshot round trip on three compiled servers: save through one follower, change the state, restore
// the raw bytes through the other follower; every server ends on exactly the saved state, every index
// afterwards is above all before, and a blocking query waiting across the restore wakes.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { statSync } from "node:fs";
import { createHash } from "node:crypto";
import { decode } from "../../src/lib/codec.ts";
import { verifySnapshot } from "../../src/snapshot/reader.ts";
import { ClusterKeys } from "../../src/transport/cluster_keys.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { waitFor, withLogs, useCluster } from "./harness.ts";
import { expectLeaderServesRestored, fullState, indexOf, listVars, restoreFile, saveFile, startClusterIn } from "./snapshot_cluster.ts";

const cluster = useCluster("snap-rt", { start: (c) => startClusterIn(c) });

describe("snapshot round trip", () => {
  test(
    "save via a follower, change, restore via the other follower: exactly the saved state everywhere",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const [f1, f2] = cluster.followers(leader) as [typeof leader, typeof leader];
        for (let i = 0; i < 40; i++) await cluster.servers[i % 3]!.putVar(`rt/k${i}`, { v: `saved-${i}`, n: String(i) });
        await leader.putVar("rt/locked-free", { x: "1" });

        const file = join(cluster.dir, "rt.snap");
        const saved = await saveFile(f1, file);
        expect(saved.digestOk).toBe(true);
        expect(saved.size).toBe(statSync(file).size);
        expect(saved.index).toBeGreaterThan(0);

        // What was saved is what the leader shows right after (no writes in between).
        const want = await fullState(leader);
        expect(want.split("\n")).toHaveLength(41);
        for (const s of cluster.servers)
          await waitFor(`${s.name} caught up before the change`, 10_000, async () => (await fullState(s)) === want);

        // Change the state: overwrite, delete, add.
        for (let i = 0; i < 10; i++) await f2.putVar(`rt/k${i}`, { v: `changed-${i}` });
        for (let i = 10; i < 20; i++) expect((await leader.http("DELETE", `/v1/var/rt/k${i}`)).status).toBe(200);
        for (let i = 0; i < 15; i++) await f1.putVar(`rt/new${i}`, { v: "new" });
        const changed = await leader.putVar("rt/last", { v: "last" });
        expect(await fullState(leader)).not.toBe(want);

        let before = changed.ModifyIndex;
        for (const s of cluster.servers) {
          await waitFor(`${s.name} applied the change`, 10_000, async () => (await indexOf(s)) >= changed.ModifyIndex);
          before = Math.max(before, await indexOf(s), await indexOf(s, "/v1/var/rt/k0?stale"));
        }

        // A blocking query that would wait a minute; the restore must wake it.
        const t0 = performance.now();
        const blocked = f1
          .get<{ Items: Record<string, string> }>(`/v1/var/rt/k0?index=${before}&wait=60s`, 70_000)
          .then((r) => ({ ...r, ms: performance.now() - t0 }));

        const r = await restoreFile(f2, file);
        expect(r.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "rt/k0",
          items: { v: "saved-0", n: "0" },
          absent: "rt/last",
          index: (r.body as { Index: number }).Index,
        });
        const restoredAt = (r.body as { Index: number }).Index;
        expect(restoredAt).toBeGreaterThan(before);

        const woke = await blocked;
        expect(woke.status).toBe(200);
        expect(woke.ms).toBeLessThan(30_000);
        expect(Number(woke.headers.get("X-Edgenode-Index"))).toBeGreaterThanOrEqual(restoredAt);
        expect(woke.body.Items).toEqual({ v: "saved-0", n: "0" });

        for (const s of cluster.servers) {
          await waitFor(`${s.name} holds exactly the saved state`, 20_000, async () => (await fullState(s)) === want);
          const idx = await indexOf(s);
          expect(idx).toBeGreaterThan(before);
          expect(idx).toBeGreaterThanOrEqual(restoredAt);
          expect(await indexOf(s, "/v1/var/rt/k0?stale")).toBeGreaterThan(before);
          expect(await indexOf(s, "/v1/var/rt/new0?stale")).toBeGreaterThan(before);
          expect((await listVars(s)).map((v) => v.Path)).not.toContain("rt/last");
        }

        // A server's raft snapshot right after the restore is the staged file under a new header (no
        // other write came in between here); restarted from it, that server holds the restored state.
        const fromStaged = await waitFor("a server's raft snapshot of the restore made from the staged file", 20_000, async () =>
          cluster.servers.find((s) => /snapshot taken: [^\n]*from="?staged restore file/.test(s.log())),
        );
        await fromStaged.restart();
        await waitFor(
          `${fromStaged.name} back from its snapshot with exactly the saved state`,
          20_000,
          async () => (await fullState(fromStaged)) === want,
        );

        // Writes after the restore land above it and are seen everywhere.
        const after = await f2.putVar("rt/after", { v: "after" });
        expect(after.ModifyIndex).toBeGreaterThan(restoredAt);
        for (const s of cluster.servers)
          await waitFor(
            `${s.name} sees the write after the restore`,
            10_000,
            async () => (await s.get(`/v1/var/rt/after?stale`)).status === 200,
          );
      }),
    120_000,
  );

  test(
    "a second save after the restore has a Digest that matches its body and restores cleanly (dry run)",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        const file = join(cluster.dir, "rt2.snap");
        const saved = await saveFile(f, file, "?stale");
        expect(saved.digestOk).toBe(true);
        const before = await fullState(leader);
        const dry = await restoreFile(f, file, "?dry-run");
        expect(dry.status).toBe(200);
        expect((dry.body as { Counts: Record<string, number> }).Counts.vars).toBe((await listVars(f)).length);
        expect(await fullState(leader)).toBe(before);
      }),
    60_000,
  );

  test(
    'Snapshot.Save over RPC: without a mode (callers before stream mode) the meta comes first, with mode "stream" last; both carry a valid file',
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        const f = cluster.followers(leader)[0]!;
        // Snapshot.Save over RPC is a server-to-server call: the caller proves the cluster key, as a server of another region forwarding a save would.
        const pool = new ConnPool({
          keyed: { keys: new ClusterKeys([cluster.key]), self: () => ({ id: "test-caller", region: "global" }) },
        });
        try {
          const files: { meta: { Index: number; Size: number; Digest: string }; bytes: Uint8Array }[] = [];
          for (const args of [{ q: {} }, { q: {}, mode: "stream" }]) {
            // Through a follower, which forwards to the leader in stream mode whichever shape it was asked for.
            const stream = await pool.openStream(f.rpcAddr, "Snapshot.Save", args, { timeoutMs: 10_000 });
            const chunks: Uint8Array[] = [];
            for await (const c of stream) chunks.push(c);
            const head = decode(chunks[0]!) as Record<string, unknown>;
            let metaChunk: Uint8Array;
            let data: Uint8Array[];
            if (args.mode === "stream") {
              expect(head).toEqual({ Mode: "stream" });
              metaChunk = chunks.at(-1)!;
              data = chunks.slice(1, -1);
            } else {
              metaChunk = chunks[0]!;
              data = chunks.slice(1);
            }
            const meta = decode(metaChunk) as { Index: number; Size: number; Digest: string };
            const bytes = Buffer.concat(data);
            expect(bytes.length).toBe(meta.Size);
            expect(createHash("sha256").update(bytes).digest("base64")).toBe(meta.Digest);
            files.push({ meta, bytes });
          }
          const verify = (bytes: Uint8Array) =>
            verifySnapshot(
              (async function* () {
                yield bytes;
              })(),
            );
          const counts = (await verify(files[0]!.bytes)).counts;
          for (const { meta, bytes } of files) {
            const v = await verify(bytes);
            expect(v.header.index).toBe(meta.Index);
            expect(v.counts).toEqual(counts);
          }
        } finally {
          await pool.close();
        }
      }),
    60_000,
  );
});
