// One nemesis run: start the proxied cluster, seed the keys and save a snapshot, run clients while
// faults come and go, heal, then check: a leader within a bound, linearizability per key, every
// acknowledged write present, all servers converged. A failing run keeps its directory.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NotYet, waitFor, type ClusterServer } from "../cluster/harness.ts";
import { checkHistory, type CheckResult } from "./checker.ts";
import { FAULT_KINDS, saveSnapshot, startFault, type FaultContext, type FaultKind } from "./faults.ts";
import { History, type Operation } from "./history.ts";
import { NemesisCluster } from "./nemesis_cluster.ts";
import { describe } from "./register_model.ts";
import { SeededRandom } from "./seeded_random.ts";
import { call, Client, recordedRead, recordedWrite, VAR_PREFIX } from "./workload.ts";

export interface NemesisOptions {
  timeMs: number;
  seed: number;
  servers?: number;
  clients?: number;
  keys?: number;
  faults?: readonly FaultKind[];
  /** How long each fault lasts and the quiet gap after it, ms ranges. */
  faultHoldMs?: [number, number];
  quietMs?: [number, number];
  /** Bound on electing a leader once everything is healed. */
  leaderBoundMs?: number;
  checkTimeoutMs?: number;
  /** Clients read with ?stale: the run must then fail (a self-test that the checks can fail). */
  staleReads?: boolean;
  /** Keep the run's directory even when it passes. */
  keep?: boolean;
  quiet?: boolean;
}

export interface NemesisReport {
  ok: boolean;
  seed: number;
  dir: string;
  failures: string[];
  operations: Record<string, number>;
  faults: Record<string, number>;
  leaderAfterHealMs: number | undefined;
  check: CheckResult | undefined;
  replay: string;
}

const SETUP_PROCESS = 999;
const FINAL_PROCESS = 2000;

export async function runNemesis(o: NemesisOptions): Promise<NemesisReport> {
  const size = o.servers ?? 3;
  const rng = new SeededRandom(o.seed);
  const dir = mkdtempSync(join(tmpdir(), `edgenode-nemesis-${o.seed}-`));
  const t0 = performance.now();
  const logFile = join(dir, "nemesis.log");
  const log = (line: string) => {
    const l = `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`;
    appendFileSync(logFile, `${l}\n`);
    if (!o.quiet) console.log(l);
  };
  const replay = `bun run nemesis --time ${Math.round(o.timeMs / 1000)}s --seed ${o.seed} --servers ${size}${o.staleReads ? " --stale-reads" : ""}${o.faults ? ` --faults ${o.faults.join(",")}` : ""}`;
  const keys = Array.from({ length: o.keys ?? 3 }, (_, i) => `k${i}`);
  const cluster = new NemesisCluster({ size, dir, rng });
  const history = new History();
  const failures: string[] = [];
  const faultCounts: Record<string, number> = {};
  let leaderAfterHealMs: number | undefined;
  let check: CheckResult | undefined;
  try {
    log(`seed ${o.seed}, ${size} servers, dir ${dir}`);
    await cluster.start();
    const first = await cluster.waitForLeader(30_000);
    log(`leader ${first.name}`);
    for (const k of keys) {
      await waitFor(
        `initial write of ${k}`,
        20_000,
        async () => (await recordedWrite(history, SETUP_PROCESS, first, k, `init-${k}`)).status === "ok",
      );
    }
    const ctx: FaultContext = { cluster, rng, history, saved: undefined, log };
    const kinds = o.faults ?? FAULT_KINDS;
    if (kinds.includes("restore")) {
      ctx.saved = await saveSnapshot(ctx, keys);
      log(`saved snapshot (${ctx.saved.bytes.length} bytes): ${JSON.stringify([...ctx.saved.values])}`);
    }

    const clientRng = new SeededRandom(o.seed ^ 0x5bd1e995);
    const clients = Array.from(
      { length: o.clients ?? 5 },
      (_, i) => new Client(i, history, cluster.servers, keys, new SeededRandom(clientRng.int(1, 2 ** 31)), o.staleReads ?? false),
    );
    const end = performance.now() + o.timeMs;
    const done = () => performance.now() >= end;
    const running = clients.map((c) => c.run(done));

    // Every kind comes up once per round, in a seeded order.
    let round: FaultKind[] = [];
    while (!done()) {
      if (round.length === 0) round = [...kinds].sort(() => rng.next() - 0.5);
      const kind = round.shift()!;
      faultCounts[kind] = (faultCounts[kind] ?? 0) + 1;
      const stop = await startFault(kind, ctx);
      await Bun.sleep(Math.min(rng.int(...(o.faultHoldMs ?? [1500, 5000])), Math.max(0, end - performance.now())));
      await stop();
      log(`healed after ${kind}`);
      await Bun.sleep(Math.min(rng.int(...(o.quietMs ?? [500, 2000])), Math.max(0, end - performance.now())));
    }
    await Promise.all(running);
    log(`load stopped: ${clients.map((c) => c.ops).reduce((a, b) => a + b, 0)} operations`);

    // Heal everything and require a leader within the bound.
    cluster.network.heal();
    for (const s of cluster.servers) s.cont();
    for (const s of cluster.servers) if (!s.running) s.start();
    const healAt = performance.now();
    await Promise.all(cluster.servers.map((s) => s.waitHttp(20_000)));
    const bound = o.leaderBoundMs ?? 15_000;
    let leader;
    try {
      leader = await cluster.waitForLeader(bound);
      leaderAfterHealMs = Math.round(performance.now() - healAt);
      log(`leader ${leader.name} ${leaderAfterHealMs} ms after healing`);
    } catch (e) {
      failures.push(`no leader within ${bound} ms of healing: ${(e as Error).message}`);
    }

    if (leader) {
      // Final linearizable reads join the history; then every server must converge on them.
      const finals = new Map<string, Operation>();
      for (const k of keys) {
        await waitFor(`final read of ${k}`, 20_000, async () => {
          const r = await recordedRead(history, FINAL_PROCESS, leader, k);
          if (r) finals.set(k, history.ops.at(-1)!);
          return r !== undefined;
        }).catch((e) => failures.push((e as Error).message));
      }
      await voters(cluster, leader, failures, log);
      await converge(cluster, keys, failures, log);
      lostWrites(history.finished(), finals, failures);
    }

    check = checkHistory(history.finished(), { timeoutMs: o.checkTimeoutMs ?? 120_000 });
    for (const k of check.keys) {
      log(`key ${k.key}: ${k.verdict} (${k.operations} operations, ${k.steps} steps)${k.explanation ? ` — ${k.explanation}` : ""}`);
      if (k.verdict !== "ok") failures.push(`key ${k.key}: ${k.verdict}${k.explanation ? ` — ${k.explanation}` : ""}`);
    }
    const unidentified = cluster.network.proxies.reduce((a, p) => a + p.unidentified, 0);
    if (unidentified > 0) log(`warning: ${unidentified} proxied connections from unidentified dialers`);
  } catch (e) {
    failures.push(`harness error: ${(e as Error).stack ?? e}`);
  } finally {
    await cluster.stop().catch(() => {});
  }
  const operations: Record<string, number> = {};
  for (const op of history.finished()) {
    const k = `${op.input.kind}:${op.status}`;
    operations[k] = (operations[k] ?? 0) + 1;
  }
  const ok = failures.length === 0;
  log(`operations ${JSON.stringify(operations)}; faults ${JSON.stringify(faultCounts)}`);
  if (!ok || o.keep) {
    writeFileSync(join(dir, "history.json"), JSON.stringify(history.toJSON(), null, 1));
    log(`${ok ? "PASS" : "FAIL"}: kept ${dir} (history.json, nemesis.log, s*.N.log)`);
  }
  if (!ok) {
    for (const f of failures) log(`FAIL: ${f}`);
    log(`seed ${o.seed}; replay: ${replay}`);
  } else if (!o.keep) {
    rmSync(dir, { recursive: true, force: true });
  }
  return { ok, seed: o.seed, dir, failures, operations, faults: faultCounts, leaderAfterHealMs, check, replay };
}

/** Waits until every server is a voter again (removed ones rejoin and are promoted). */
async function voters(cluster: NemesisCluster, leader: ClusterServer, failures: string[], log: (l: string) => void): Promise<void> {
  let last = "";
  try {
    await waitFor("every server back as a voter", 30_000, async () => {
      const r = await call(leader, "GET", "/v1/operator/raft/configuration");
      if ("error" in r || r.status !== 200) return false;
      const servers = (JSON.parse(r.text) as { Servers: { Address: string; Voter: boolean }[] }).Servers;
      last = JSON.stringify(servers.map((s) => `${s.Address}${s.Voter ? "" : " (nonvoter)"}`));
      return (
        cluster.servers.every((s) => servers.some((x) => x.Address === s.rpcAddr && x.Voter)) && servers.length === cluster.servers.length
      );
    });
    log(`configuration: ${last}`);
  } catch (e) {
    failures.push(`configuration did not return to every server as a voter: ${last} (${(e as Error).message})`);
  }
}

/** Waits until every server's own (?stale) view of every key is the same; records a failure if not. */
async function converge(cluster: NemesisCluster, keys: readonly string[], failures: string[], log: (l: string) => void): Promise<void> {
  let last = "";
  try {
    await waitFor("every server to hold the same variables", 30_000, async () => {
      const views: string[] = [];
      for (const s of cluster.servers) {
        const parts: string[] = [];
        for (const k of keys) {
          const r = await call(s, "GET", `/v1/var/${VAR_PREFIX}${k}?stale`);
          if ("error" in r) throw new NotYet(`${s.name}: ${r.error}`);
          parts.push(r.status === 404 ? `${k}=absent` : `${k}=${r.body?.Items?.v}@${r.body?.ModifyIndex}`);
        }
        views.push(`${s.name}{${parts.join(" ")}}`);
      }
      last = views.join(" ");
      return views.every((v) => v.slice(v.indexOf("{")) === views[0]!.slice(views[0]!.indexOf("{")));
    });
    log(`converged: ${last}`);
  } catch (e) {
    failures.push(`servers did not converge: ${last} (${(e as Error).message})`);
  }
}

/**
 * Every acknowledged write is present: the final value must come from a write that did not finish
 * before the last acknowledged write of its key began (else that acknowledged write was lost).
 */
export function lostWrites(ops: readonly Operation[], finals: Map<string, Operation>, failures: string[]): void {
  for (const [key, final] of finals) {
    const writes = ops.filter((o) => o.key === key && o.input.kind !== "read" && o.status !== "fail");
    const acked = writes.filter((o) => o.status === "ok");
    const lastAcked = acked.reduce<Operation | undefined>((m, o) => (!m || o.invokeAt > m.invokeAt ? o : m), undefined);
    if (!lastAcked) continue;
    const writers = writes.filter((o) => o.input.kind !== "read" && o.input.value === final.output);
    if (!writers.some((w) => w.completeAt >= lastAcked.invokeAt)) {
      failures.push(
        `key ${key}: final value ${JSON.stringify(final.output)} predates the acknowledged write ${describe(lastAcked)}; writers: ${writers.map(describe).join("; ") || "none"}`,
      );
    }
  }
}
