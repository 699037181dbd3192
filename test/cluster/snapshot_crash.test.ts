// Crash matrix for snapshot restore on three compiled servers: SIGKILL the leader, or separately the
// follower receiving the upload, during upload, during verify, after staging and right after commit,
// with seeded random timing. After the killed server restarts, every server holds the same state,
// it is wholly the old or wholly the new one, and a 200 always means the new one.
// Default: one run per (target, phase); EDGENODE_LONG=1 runs each cell several times with a bigger file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { waitFor, withLogs, type Cluster, type ClusterServer } from "./harness.ts";
import { fingerprint, listVars, restoreFile, startCluster, writeVarsSnapshot, type VarMeta } from "./snapshot_cluster.ts";
import { mulberry32 } from "../support/mulberry32.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const VARS = LONG ? 50_000 : 20_000;
const ROUNDS = LONG ? 4 : 1;
const SEED = Number(process.env.EDGENODE_SEED ?? Date.now() % 1_000_000);

let cluster: Cluster;
const files: Record<"A" | "B", { path: string; print: string; size: number }> = {} as never;
let tiny = "";

function expectedPrint(tag: string, n: number): string {
  const list: VarMeta[] = [{ Path: "marker/state", CreateIndex: 7, ModifyIndex: 7 }];
  for (let i = 0; i < n; i++) list.push({ Path: `${tag}/k${i}`, CreateIndex: 10 + i, ModifyIndex: 10 + i });
  return fingerprint(list);
}

beforeAll(async () => {
  cluster = await startCluster("snap-crash");
  for (const tag of ["A", "B"] as const) {
    const path = join(cluster.dir, `${tag}.snap`);
    const w = await writeVarsSnapshot(path, tag, VARS, 1000, tag === "A" ? 11 : 22);
    files[tag] = { path, print: expectedPrint(tag, VARS), size: w.size };
  }
  tiny = join(cluster.dir, "tiny.snap");
  await writeVarsSnapshot(tiny, "tiny", 1, 10, 3);
}, 120_000);

afterAll(async () => {
  await cluster?.cleanup();
});

const rng = mulberry32;

/** Fingerprint of a server's variables, leaving out the barrier writes the test itself makes. */
async function printOf(s: ClusterServer): Promise<string> {
  return fingerprint((await listVars(s)).filter((v) => !v.Path.startsWith("barrier/")));
}

let barrierN = 0;
/** Every server agrees on one state (after a committed write that all have applied); returns its fingerprint. */
async function agreedState(): Promise<string> {
  // A restore whose client went away may still be running on the leader (the upload was complete): wait
  // until the leader takes a new one (a dry run answers 200, not 409), so the state judged is final.
  await waitFor("the leader's restore slot to be free", 120_000, async () => (await restoreFile(await cluster.waitForLeader(20_000), tiny, "?dry-run")).status === 200 || undefined, 250);
  return waitFor("all servers to agree on one state", 60_000, async () => {
    const leader = await cluster.waitForLeader(20_000);
    const b = await leader.putVar(`barrier/b${barrierN++}`, { v: "1" });
    for (const s of cluster.servers) {
      await waitFor(`${s.name} to apply the barrier`, 20_000, async () => (await s.get(`/v1/var/barrier/b${barrierN - 1}?stale`)).status === 200);
    }
    const prints = await Promise.all(cluster.servers.map(printOf));
    return prints.every((p) => p === prints[0]) && b.ModifyIndex > 0 ? prints[0] : undefined;
  }, 500);
}

function count(s: ClusterServer, re: RegExp): number {
  return s.log().match(re)?.length ?? 0;
}

type Phase = "upload" | "verify" | "staged" | "committed";
const PHASES: Phase[] = ["upload", "verify", "staged", "committed"];

/** Waits (polling the leader's log and spool dir) until the restore reaches `phase`, plus a random delay. */
async function reach(leader: ClusterServer, phase: Phase, base: Record<string, number>, r: () => number, size: number): Promise<string> {
  const line = { verify: /restore: received/g, staged: /restore: staged/g, committed: /restore: swapped/g } as const;
  if (phase === "upload") {
    const frac = 0.1 + 0.8 * r();
    const dir = join(leader.dataDir, "staged");
    await waitFor("the upload to be part way", 30_000, () => readdirSync(dir).some((n) => n.startsWith("upload-") && statSync(join(dir, n), { throwIfNoEntry: false })?.size! >= frac * size) || undefined, 2);
    return `upload ${Math.round(frac * 100)}%`;
  }
  await waitFor(`the leader to log ${phase}`, 60_000, () => count(leader, line[phase]) > base[phase]! || undefined, 2);
  const delay = Math.floor(r() * (phase === "verify" ? 300 : phase === "staged" ? 5 : 40));
  if (delay > 0) await Bun.sleep(delay);
  return `${phase} +${delay}ms`;
}

/** The upload body: throttled for the upload phase so the kill lands mid-transfer. */
function body(file: string, throttle: boolean): ReadableStream<Uint8Array> {
  if (!throttle) return Bun.file(file).stream();
  const src = Bun.file(file).stream().getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const n = await src.read();
      if (n.done) return c.close();
      c.enqueue(n.value);
      await Bun.sleep(2);
    },
  });
}

describe("restore crash matrix", () => {
  test(`SIGKILL the leader or the receiving follower at each phase (seed ${SEED}, ${ROUNDS} round(s), ${VARS} vars)`, () =>
    withLogs(cluster, async () => {
      const r = rng(SEED);
      // Start from a known state: A restored with no crash.
      const leader0 = await cluster.waitForLeader();
      const first = await restoreFile(cluster.followers(leader0)[0]!, files.A.path);
      expect(first.status).toBe(200);
      let current: "A" | "B" = "A";
      expect(await agreedState()).toBe(files.A.print);
      const outcomes: string[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          for (const target of ["leader", "follower"] as const) {
            for (const phase of PHASES) {
              const next: "A" | "B" = current === "A" ? "B" : "A";
              const leader = await cluster.waitForLeader(20_000);
              const via = cluster.followers(leader)[Math.floor(r() * 2)]!;
              const victim = target === "leader" ? leader : via;
              const base = { verify: count(leader, /restore: received/g), staged: count(leader, /restore: staged/g), committed: count(leader, /restore: swapped/g) };
              const req = fetch(`${via.url}/v1/operator/snapshot`, { method: "PUT", body: body(files[next].path, phase === "upload"), duplex: "half", signal: AbortSignal.timeout(120_000) } as RequestInit).then(
                async (x) => ({ status: x.status, text: await x.text() }),
                (e: Error) => ({ status: 0, text: e.message }),
              );
              let at: string;
              try {
                at = await reach(leader, phase, base, r, files[next].size);
              } catch (e) {
                const res = await Promise.race([req, Bun.sleep(100).then(() => ({ status: -1, text: "pending" }))]);
                throw new Error(`${(e as Error).message}; restore answered ${res.status} ${res.text}`);
              }
              await victim.kill();
              const res = await req;
              victim.start();
              await victim.waitHttp(20_000);
              const agreed = await agreedState();
              const label = `${target} killed at ${at}: HTTP ${res.status}${res.status !== 200 ? ` (${res.text.slice(0, 80)})` : ""}`;
              outcomes.push(`${label} -> ${agreed === files[next].print ? "new" : agreed === files[current].print ? "old" : "NEITHER"}`);
              expect(agreed === files[next].print || agreed === files[current].print).toBe(true);
              if (res.status === 200) expect(agreed).toBe(files[next].print);
              // Losing the leader is an unknown outcome (503), never a server error.
              expect(res.status).not.toBe(500);
              if (agreed === files[next].print) current = next;
            }
          }
        }
      } finally {
        console.log(`crash matrix (seed ${SEED}):\n  ${outcomes.join("\n  ")}`);
      }
    }), LONG ? 1_200_000 : 240_000);
});
