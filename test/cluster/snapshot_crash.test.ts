// Crash matrix for snapshot restore on three compiled servers: for every phase a restore passes through
// and every server it can lose (the leader, the follower relaying the upload, the other follower), the
// servers holding that phase are paused in it by a test hook (EDGENODE_TEST_PAUSE_FILE) or, for an entry
// proposed and not committed, by freezing the followers; the logs show where, the victim is SIGKILLed,
// and once it is back every server is wholly on the state that cell must end on, the client got the
// answer it must get, and the cluster takes writes and restores again.
// Default: one round of every cell; EDGENODE_LONG=1 runs five rounds with a bigger file.
import { beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RestorePhase } from "../../src/server/snapshot_restore.ts";
import { type ClusterServer, useCluster, waitFor, withLogs } from "./harness.ts";
import {
  expectLeaderServesRestored,
  fingerprint,
  listVars,
  restoreFile,
  startClusterIn,
  writeVarsSnapshot,
  type VarMeta,
} from "./snapshot_cluster.ts";
import { mulberry32 } from "../support/mulberry32.ts";

const LONG = process.env.EDGENODE_LONG === "1";
// The hook holds each phase as long as the test needs, so the file's size no longer decides where a kill
// lands; it only has to span more than one upload frame (64 KiB) for the upload phase.
const VARS = LONG ? 20_000 : 2_000;
const ROUNDS = LONG ? 5 : 1;
const SEED = Number(process.env.EDGENODE_SEED ?? Date.now() % 1_000_000);
/** The file, in each server's data dir, whose content names the phase to pause at (see snapshot_restore.ts). */
const PAUSE_FILE = "test-pause-at";

type Victim = "leader" | "relay" | "other";
const VICTIMS: Victim[] = ["leader", "relay", "other"];
/**
 * The hook's phases, and "proposed": the entry is in the leader's log and cannot commit, both followers
 * being frozen (SIGSTOP) from the "staged" pause until the leader logs "restore: proposed".
 */
type Phase = RestorePhase | "proposed";
const PHASES: Phase[] = ["upload", "verified", "stage", "staged", "proposed", "apply", "swapped"];

/**
 * How each cell must end. The restore's entry is either never proposed (old) or committed (new): losing the
 * leader before the proposal loses the restore; any one follower is not needed, the other one makes the
 * quorum. A leader lost with the entry in its log alone may have sent it to a frozen follower's socket,
 * which reads it once thawed: either state, but one for all. The client hears 503 through the relay when
 * the leader is lost, nothing (the connection drops) when the relay is, and 200 when only the other follower is.
 */
const OUTCOME: Record<Phase, Record<Victim, "old" | "new" | "either">> = {
  upload: { leader: "old", relay: "old", other: "new" },
  verified: { leader: "old", relay: "new", other: "new" },
  stage: { leader: "old", relay: "new", other: "new" },
  staged: { leader: "old", relay: "new", other: "new" },
  proposed: { leader: "either", relay: "new", other: "new" },
  apply: { leader: "new", relay: "new", other: "new" },
  swapped: { leader: "new", relay: "new", other: "new" },
};
const STATUS: Record<Victim, number> = { leader: 503, relay: 0, other: 200 };

/**
 * The statuses the client may hear in a cell. The leader proposes once a quorum of voters holds the file,
 * not once every follower has answered: with the relay paused in its own staging, the other follower
 * makes the quorum, and the 200 may pass back through the relay before it dies — or the relay dies first.
 */
function statuses(phase: Phase, victim: Victim): number[] {
  return phase === "stage" && victim === "relay" ? [STATUS.relay, 200] : [STATUS[victim]];
}

/**
 * Which servers hold the cell's phase while the victim dies. Leader phases pause the leader; "stage" the
 * follower victim (the other follower may make the quorum meanwhile), or both followers when the leader dies; "apply" every
 * server (committed, swapped nowhere); "swapped" the leader (not yet answered) and a follower victim.
 */
function pausedIn(phase: Phase, victim: Victim, roles: Record<Victim, ClusterServer>): ClusterServer[] {
  switch (phase) {
    case "upload":
    case "verified":
    case "staged":
    case "proposed":
      return [roles.leader];
    case "stage":
      return victim === "leader" ? [roles.relay, roles.other] : [roles[victim]];
    case "apply":
      return [roles.leader, roles.relay, roles.other];
    case "swapped":
      return victim === "leader" ? [roles.leader] : [roles.leader, roles[victim]];
  }
}

const files: Record<"A" | "B", { path: string; print: string; tag: string }> = {} as never;
let tiny = "";

function expectedPrint(tag: string, n: number): string {
  const list: VarMeta[] = [{ Path: "marker/state", CreateIndex: 7, ModifyIndex: 7 }];
  for (let i = 0; i < n; i++) list.push({ Path: `${tag}/k${i}`, CreateIndex: 10 + i, ModifyIndex: 10 + i });
  return fingerprint(list);
}

const cluster = useCluster("snap-crash", { start: (c) => startClusterIn(c, { env: { EDGENODE_TEST_PAUSE_FILE: PAUSE_FILE } }) });

beforeAll(async () => {
  for (const tag of ["A", "B"] as const) {
    const path = join(cluster.dir, `${tag}.snap`);
    await writeVarsSnapshot(path, tag, VARS, 1000, tag === "A" ? 11 : 22);
    files[tag] = { path, print: expectedPrint(tag, VARS), tag };
  }
  tiny = join(cluster.dir, "tiny.snap");
  await writeVarsSnapshot(tiny, "tiny", 1, 10, 3);
}, 120_000);

function pauseAt(s: ClusterServer, phase: RestorePhase | ""): void {
  writeFileSync(join(s.dataDir, PAUSE_FILE), phase);
}

const PAUSED = /test hook: paused at restore phase: phase=(\w+)/g;
const PROPOSED = /restore: proposed/g;

function count(s: ClusterServer, re: RegExp): number {
  return s.log().match(re)?.length ?? 0;
}

/** The phases `s` has logged pausing at, every boot, in order. */
function pausedPhases(s: ClusterServer): string[] {
  return [...s.log().matchAll(PAUSED)].map((m) => m[1]!);
}

/** Fingerprint of a server's variables (its own view, ?stale), leaving out the barrier writes the test makes. */
async function printOf(s: ClusterServer): Promise<string> {
  return fingerprint((await listVars(s)).filter((v) => !v.Path.startsWith("barrier/")));
}

let barrierN = 0;
/**
 * After recovery: the cluster has a leader that takes a restore (a dry run; a restore whose client went
 * away may still be running there) and a write; once every server applied that write, each one's own
 * state is final, and is returned per server.
 */
async function statesAfterRecovery(): Promise<string[]> {
  await waitFor(
    "the leader's restore slot to be free",
    120_000,
    async () => (await restoreFile(await cluster.waitForLeader(20_000), tiny, "?dry-run")).status === 200 || undefined,
    100,
  );
  const path = `barrier/b${barrierN++}`;
  await waitFor(
    "a write through the leader",
    60_000,
    async () => (await (await cluster.waitForLeader(20_000)).put(`/v1/var/${path}`, { Items: { v: "1" } })).status === 200 || undefined,
    100,
  );
  for (const s of cluster.servers)
    await waitFor(`${s.name} to apply ${path}`, 30_000, async () => (await s.get(`/v1/var/${path}?stale`)).status === 200 || undefined, 20);
  return Promise.all(cluster.servers.map(printOf));
}

describe("restore crash matrix", () => {
  test(
    `SIGKILL each server in each phase it can be lost in (seed ${SEED}, ${ROUNDS} round(s), ${VARS} vars)`,
    () =>
      withLogs(cluster, async () => {
        const r = mulberry32(SEED);
        const nameOf = (p: string) => (p === files.A.print ? "A" : p === files.B.print ? "B" : `NEITHER (${p.slice(0, 8)})`);
        // Start from a known state: A restored with no crash.
        const leader0 = await cluster.waitForLeader();
        const first = await restoreFile(cluster.followers(leader0)[0]!, files.A.path);
        expect(first.status).toBe(200);
        await expectLeaderServesRestored(leader0, {
          present: "marker/state",
          items: { tag: "A" },
          absent: "B/k0",
          index: (first.body as { Index: number }).Index,
        });
        let current: "A" | "B" = "A";
        expect((await statesAfterRecovery()).map(nameOf)).toEqual(["A", "A", "A"]);
        const outcomes: string[] = [];
        try {
          for (let round = 0; round < ROUNDS; round++) {
            for (const phase of PHASES) {
              for (const victimRole of VICTIMS) {
                const next: "A" | "B" = current === "A" ? "B" : "A";
                const leader = await cluster.waitForLeader(20_000);
                const fs = cluster.followers(leader);
                const i = Math.floor(r() * 2);
                const roles: Record<Victim, ClusterServer> = { leader, relay: fs[i]!, other: fs[1 - i]! };
                const victim = roles[victimRole];
                const hold = pausedIn(phase, victimRole, roles);
                const seen = new Map(hold.map((s) => [s, pausedPhases(s).length]));
                const hookPhase: RestorePhase = phase === "proposed" ? "staged" : phase;
                const proposedBefore = count(leader, PROPOSED);
                for (const s of hold) pauseAt(s, hookPhase);
                const req = fetch(`${roles.relay.url}/v1/operator/snapshot`, {
                  method: "PUT",
                  body: Bun.file(files[next].path).stream(),
                  duplex: "half",
                  signal: AbortSignal.timeout(120_000),
                } as RequestInit).then(
                  async (x) => ({ status: x.status, text: await x.text() }),
                  (e: Error) => ({ status: 0, text: e.message }),
                );
                // Every server meant to hold the phase says it does: the kill lands inside it.
                let landed: string[];
                try {
                  landed = await waitFor(
                    `${hold.map((s) => s.name).join(", ")} to pause at ${hookPhase}`,
                    60_000,
                    () => {
                      const now = hold.map((s) => pausedPhases(s).slice(seen.get(s)!));
                      return now.every((p) => p.length > 0) ? now.flat() : undefined;
                    },
                    5,
                  );
                  if (phase === "proposed") {
                    // Freeze both followers, then let the leader propose: the entry cannot commit.
                    roles.relay.stop();
                    roles.other.stop();
                    pauseAt(leader, "");
                    await waitFor(
                      `${leader.name} to log the proposal`,
                      10_000,
                      () => count(leader, PROPOSED) > proposedBefore || undefined,
                      2,
                    );
                    landed = ["proposed"];
                  }
                } catch (e) {
                  const res = await Promise.race([req, Bun.sleep(100).then(() => ({ status: -1, text: "pending" }))]);
                  throw new Error(`${(e as Error).message}; restore answered ${res.status} ${res.text}`);
                }
                await victim.kill();
                for (const s of cluster.servers) pauseAt(s, "");
                for (const s of cluster.servers) s.cont();
                const res = await req;
                victim.start();
                await victim.waitHttp(20_000);
                const states = await statesAfterRecovery();
                const outcome = OUTCOME[phase][victimRole];
                const want: "A" | "B" = outcome === "new" || (outcome === "either" && nameOf(states[0]!) === next) ? next : current;
                const label = `${victimRole} (${victim.name}) killed in ${phase} [paused: ${hold.map((s) => s.name).join(",")} at ${landed.join(",")}]: HTTP ${res.status}${res.status !== 200 ? ` (${res.text.slice(0, 60)})` : ""} -> ${states.map(nameOf).join(",")}`;
                outcomes.push(label);
                const allowed = statuses(phase, victimRole);
                const status = allowed.includes(res.status) ? `one of ${allowed.join("/")}` : res.status;
                expect({ cell: `${victimRole}/${phase}`, landed, status, states: states.map(nameOf) }).toEqual({
                  cell: `${victimRole}/${phase}`,
                  landed: hold.map(() => phase),
                  status: `one of ${allowed.join("/")}`,
                  states: [want, want, want],
                });
                current = want;
              }
            }
          }
          // Past every crash, a restore still goes through and the leader serves it at once.
          const next: "A" | "B" = current === "A" ? "B" : "A";
          const leader = await cluster.waitForLeader(20_000);
          const last = await restoreFile(cluster.followers(leader)[0]!, files[next].path);
          expect(last.status).toBe(200);
          await expectLeaderServesRestored(leader, {
            present: "marker/state",
            items: { tag: next },
            absent: `${current}/k0`,
            index: (last.body as { Index: number }).Index,
          });
          expect((await statesAfterRecovery()).map(nameOf)).toEqual([next, next, next]);
        } finally {
          console.log(`crash matrix (seed ${SEED}):\n  ${outcomes.join("\n  ")}`);
        }
      }),
    LONG ? 1_800_000 : 240_000,
  );
});
