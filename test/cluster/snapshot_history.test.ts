// The snapshot history on a real 3-server cluster of the compiled binary: a save and a restore through
// followers are named, with sizes and the restore's index, on the servers that took part; a bad file's
// restore is recorded as an error; a restore held at each phase by the test hook shows as in progress,
// with that phase and its bytes so far, on the API and on /ui/snapshots; the scheduled files are listed.
import { beforeAll, describe, expect, test } from "bun:test";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SnapshotHistory, SnapshotOp } from "../../src/api/snapshot.ts";
import { type ClusterServer, ok, useCluster, waitFor, withLogs } from "./harness.ts";
import { restoreBytes, restoreFile, saveFile, startClusterIn, writeVarsSnapshot } from "./snapshot_cluster.ts";

/** The file, in each server's data dir, whose content names the restore phase to pause at (restore_phase.ts). */
const PAUSE_FILE = "test-pause-at";

let file: string;

const cluster = useCluster("snap-history", {
  start: (c) =>
    startClusterIn(c, {
      env: { EDGENODE_TEST_PAUSE_FILE: PAUSE_FILE },
      extraHcl: () => `snapshot_schedule {
  enabled  = true
  interval = "2s"
  retain   = 2
}
`,
    }),
  timeoutMs: 120_000,
});

beforeAll(async () => {
  file = join(cluster.dir, "history.snap");
  // Several upload chunks (64 KiB each), so that the hook can hold the upload after its first.
  await writeVarsSnapshot(file, "H", 400, 1000, 5);
}, 120_000);

/**
 * The history as `s` answers it once every server answered: a server busy past the one-second question
 * (a loaded machine, a restore's build) is shown with its error, rightly, and asked again here.
 */
async function history(s: ClusterServer): Promise<SnapshotHistory> {
  return waitFor(`every server's snapshot history through ${s.name}`, 20_000, async () => {
    const r = ok(await s.http<SnapshotHistory>("GET", "/v1/operator/snapshot/history"), "snapshot history");
    const h = r.body as SnapshotHistory;
    return h.Servers.every((x) => x.Error === undefined) ? h : undefined;
  });
}

function opsOf(h: SnapshotHistory, s: ClusterServer): SnapshotOp[] {
  const row = h.Servers.find((x) => x.Node === s.name);
  if (!row) throw new Error(`no history row for ${s.name}`);
  expect(row.Error).toBeUndefined();
  return row.Ops;
}

function pauseAt(s: ClusterServer, phase: string): void {
  writeFileSync(join(s.dataDir, PAUSE_FILE), phase);
}

/** /ui/snapshots on `s` once every server answered its question (as `history`), the page itself 200. */
async function uiPage(s: ClusterServer): Promise<string> {
  return waitFor(`the snapshots page of ${s.name} with every server`, 20_000, async () => {
    const r = await fetch(`${s.url}/ui/snapshots`, { signal: AbortSignal.timeout(5_000) });
    expect(r.status).toBe(200);
    const html = await r.text();
    return html.includes("No answer from") ? undefined : html;
  });
}

describe("snapshot history", () => {
  test(
    "a save and a restore through followers are named, with sizes and the restore's index, on the servers that took part",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const [f1, f2] = cluster.followers(leader);
        if (!f1 || !f2) throw new Error("need two followers");
        await leader.putVar("before/x", { a: "1" });
        const saved = await saveFile(f1, join(cluster.dir, "saved.snap"));
        const up = await restoreFile(f2, file);
        expect(up.status).toBe(200);
        const index = (up.body as { Index: number }).Index;
        expect(index).toBeGreaterThan(0);
        const size = statSync(file).size;

        // Asked of any server, every server answers for itself.
        const h = await history(leader);
        expect(h.Servers.map((s) => s.Node).sort()).toEqual(["s1", "s2", "s3"]);
        const save = opsOf(h, f1).find((o) => o.Kind === "save");
        expect(save).toMatchObject({ Role: "received", Outcome: "ok", Index: saved.index, Bytes: saved.size });
        expect(opsOf(h, f2).find((o) => o.Kind === "restore")).toMatchObject({
          Role: "received",
          Outcome: "ok",
          Index: index,
          Bytes: size,
        });
        const led = opsOf(h, leader).find((o) => o.Kind === "restore");
        expect(led).toMatchObject({ Role: "leader", Outcome: "ok", Index: index, Bytes: size });
        expect(Date.parse(led?.Start ?? "")).toBeGreaterThan(Date.now() - 120_000);
        // The follower that only applied it took no part in the upload.
        expect(opsOf(h, f1).some((o) => o.Kind === "restore")).toBe(false);

        // The leader's schedule wrote files; its row lists them, named with their index, newest first.
        const scheduled = await waitFor("the leader's scheduled files listed", 20_000, async () => {
          const now = await history(f1);
          const files = now.Servers.find((s) => s.Node === leader.name)?.Scheduled ?? [];
          return files.length === 2 ? files : undefined;
        });
        for (const f of scheduled) {
          expect(f.Name).toMatch(new RegExp(`^edgenode-\\d{8}-\\d{6}-${f.Index}\\.snap$`));
          expect(f.Size).toBe(statSync(join(leader.dataDir, "backups", f.Name)).size);
        }
        expect(scheduled[0]!.Name > scheduled[1]!.Name).toBe(true);

        // The command prints the same, and the page shows a row per operation with its hooks.
        const p = Bun.spawnSync([cluster.binaryPath, "operator", "snapshot", "history", "-address", f2.url], {
          stdout: "pipe",
          stderr: "pipe",
        });
        expect(p.exitCode).toBe(0);
        const out = p.stdout.toString();
        expect(out).toMatch(new RegExp(`\\s${f2.name}\\s+restore\\s+received\\s+${index}\\s`));
        expect(out).toMatch(new RegExp(`\\s${leader.name}\\s+restore\\s+leader\\s+${index}\\s`));
        expect(out).toMatch(new RegExp(`\\s${f1.name}\\s+save\\s+received\\s+${saved.index}\\s`));
        const html = await uiPage(f1);
        expect(html).toMatch(new RegExp(`data-op="restore" data-outcome="ok" data-server="${leader.name}"`));
        expect(html).toMatch(new RegExp(`data-op="save" data-outcome="ok" data-server="${f1.name}"`));
        expect(html).toContain('data-scheduled="edgenode-');
      }),
    120_000,
  );

  test(
    "a bad file's restore is recorded with outcome error, its code and message",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const [f1] = cluster.followers(leader);
        if (!f1) throw new Error("need a follower");
        const up = await restoreBytes(f1, new TextEncoder().encode("this is not a snapshot file at all"));
        expect(up.status).toBe(400);
        const h = await history(f1);
        for (const [s, role] of [
          [f1, "received"],
          [leader, "leader"],
        ] as const) {
          const last = opsOf(h, s).find((o) => o.Kind === "restore");
          expect(last).toMatchObject({ Role: role, Outcome: "error", Error: { Code: "BAD_SNAPSHOT" } });
          expect(last?.Error?.Message).toContain("invalid snapshot");
        }
        expect(await uiPage(leader)).toMatch(new RegExp(`data-op="restore" data-outcome="error" data-server="${leader.name}"`));
      }),
    60_000,
  );

  test(
    "a restore held at a phase shows as in progress with that phase and its bytes so far, on the API and the page",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const [f1, f2] = cluster.followers(leader);
        if (!f1 || !f2) throw new Error("need two followers");
        const size = statSync(file).size;
        pauseAt(leader, "upload");
        const upload = restoreFile(f1, file);
        try {
          // Held after its first chunk: bytes are arriving, on the leader and on the relaying follower.
          const held = await waitFor("the leader holding the upload", 30_000, async () => {
            const h = await history(f2);
            const p = h.Servers.find((s) => s.Node === leader.name)?.InProgress;
            return p?.Phase === "received" && p.Bytes > 0 ? h : undefined;
          });
          const atLeader = held.Servers.find((s) => s.Node === leader.name)?.InProgress;
          expect(atLeader).toMatchObject({ Kind: "restore", Role: "leader" });
          expect(atLeader!.Bytes).toBeLessThan(size);
          expect(held.Servers.find((s) => s.Node === f1.name)?.InProgress).toMatchObject({ Role: "received", Phase: "received" });
          expect(await uiPage(f2)).toMatch(/id="restore-progress" data-phase="received"/);

          // Verified: the leader checked the whole file.
          pauseAt(leader, "verified");
          const verified = await waitFor("the leader holding the verified restore", 30_000, async () => {
            const p = (await history(f2)).Servers.find((s) => s.Node === leader.name)?.InProgress;
            return p?.Phase === "verified" ? p : undefined;
          });
          expect(verified.Bytes).toBe(size);

          // On to "staged": a quorum holds the file, the entry is not proposed yet.
          pauseAt(leader, "staged");
          const staged = await waitFor("the leader holding the staged restore", 30_000, async () => {
            const p = (await history(leader)).Servers.find((s) => s.Node === leader.name)?.InProgress;
            return p?.Phase === "staged" ? p : undefined;
          });
          expect(staged.Bytes).toBe(size);
          expect(staged.StagedOn).toBeGreaterThanOrEqual(2);
          const html = await uiPage(f1);
          expect(html).toMatch(/id="restore-progress" data-phase="staged"/);
          expect(html).toContain("staged on ");

          // Committed: its entry applies on the leader, the old state still served; then swapped.
          for (const [hook, phase] of [
            ["apply", "committed"],
            ["swapped", "swapped"],
          ] as const) {
            pauseAt(leader, hook);
            await waitFor(`the leader's restore shown ${phase}`, 30_000, async () => {
              const p = (await history(f2)).Servers.find((s) => s.Node === leader.name)?.InProgress;
              return p?.Phase === phase ? p : undefined;
            });
            expect(await uiPage(f2)).toMatch(new RegExp(`id="restore-progress" data-phase="${phase}"`));
          }
        } finally {
          pauseAt(leader, "");
        }
        const up = await upload;
        expect(up.status).toBe(200);
        const index = (up.body as { Index: number }).Index;
        const h = await history(f2);
        expect(h.Servers.every((s) => s.InProgress === undefined)).toBe(true);
        expect(opsOf(h, leader)[0]).toMatchObject({ Kind: "restore", Outcome: "ok", Index: index });
        expect(await uiPage(f2)).not.toContain('id="restore-progress"');
      }),
    120_000,
  );
});
