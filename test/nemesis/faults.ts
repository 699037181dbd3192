// The nemesis's faults: each starts a disturbance and returns how to end it. Network shapes go
// through the proxies; process faults use signals; leadership transfer and snapshot restore go
// through the HTTP API.
import { mkdirSync, rmSync } from "node:fs";
import type { ClusterServer } from "../cluster/harness.ts";
import type { History } from "./history.ts";
import type { NemesisCluster } from "./nemesis_cluster.ts";
import type { SeededRandom } from "./seeded_random.ts";
import { call, VAR_PREFIX } from "./workload.ts";

export const FAULT_KINDS = [
  "partition-halves",
  "isolate-leader",
  "bridge",
  "one-way",
  "slow",
  "flaky",
  "kill",
  "pause",
  "transfer-leadership",
  "restore",
  "remove-readd",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What the restore fault puts back: the snapshot saved early and the value each key had then. */
export interface SavedSnapshot {
  bytes: Uint8Array;
  values: Map<string, string | null>;
}

export interface FaultContext {
  cluster: NemesisCluster;
  rng: SeededRandom;
  history: History;
  saved: SavedSnapshot | undefined;
  log: (line: string) => void;
}

/** Process id used in the history for the restore's per-key writes. */
export const RESTORE_PROCESS = 1000;

function shuffled(rng: SeededRandom, n: number): number[] {
  const xs = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Starts fault `kind`; the returned function ends it (heals, continues, restarts). */
export async function startFault(kind: FaultKind, ctx: FaultContext): Promise<() => Promise<void>> {
  const { cluster, rng } = ctx;
  const net = cluster.network;
  const n = cluster.servers.length;
  const healNet = async () => net.heal();
  switch (kind) {
    case "partition-halves": {
      const order = shuffled(rng, n);
      const minority = order.slice(0, Math.floor((n - 1) / 2) || 1);
      const majority = order.slice(minority.length);
      net.partition(minority, majority);
      ctx.log(`partition ${JSON.stringify(minority)} | ${JSON.stringify(majority)}`);
      return healNet;
    }
    case "isolate-leader": {
      const l = (await cluster.currentLeader()) ?? rng.int(0, n);
      net.partition(
        [l],
        Array.from({ length: n }, (_, i) => i).filter((i) => i !== l),
      );
      ctx.log(`isolate s${l}`);
      return healNet;
    }
    case "bridge": {
      // Two sides that cannot talk, and one server that talks to both.
      const order = shuffled(rng, n);
      const bridge = order[0]!;
      const rest = order.slice(1);
      const a = rest.slice(0, Math.ceil(rest.length / 2));
      const b = rest.slice(a.length);
      net.partition(a, b);
      ctx.log(`bridge s${bridge} between ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
      return healNet;
    }
    case "one-way": {
      // The leader's outbound bytes vanish (it hears everyone, nobody hears it), or a random pair's.
      const l = rng.next() < 0.5 ? await cluster.currentLeader() : undefined;
      if (l !== undefined) {
        for (let j = 0; j < n; j++) if (j !== l) net.cut(l, j);
        ctx.log(`one-way: s${l} (leader) -> all cut`);
      } else {
        const [x, y] = shuffled(rng, n);
        net.cut(x!, y!);
        ctx.log(`one-way: s${x} -> s${y} cut`);
      }
      return healNet;
    }
    case "slow": {
      const ms = rng.int(20, 150);
      net.slow(ms, ms);
      ctx.log(`slow links ${ms}+${ms}ms`);
      return healNet;
    }
    case "flaky": {
      net.flaky(0.02);
      ctx.log("flaky links (2% resets per chunk)");
      return healNet;
    }
    case "kill": {
      const i = rng.next() < 0.5 ? ((await cluster.currentLeader()) ?? rng.int(0, n)) : rng.int(0, n);
      const s = cluster.servers[i]!;
      await s.kill();
      ctx.log(`SIGKILL s${i}`);
      return async () => {
        s.start();
        await s.waitHttp(20_000);
        ctx.log(`restarted s${i}`);
      };
    }
    case "pause": {
      const i = rng.next() < 0.5 ? ((await cluster.currentLeader()) ?? rng.int(0, n)) : rng.int(0, n);
      const s = cluster.servers[i]!;
      s.stop();
      ctx.log(`SIGSTOP s${i}`);
      return async () => {
        s.cont();
        ctx.log(`SIGCONT s${i}`);
      };
    }
    case "transfer-leadership": {
      const s = rng.pick(cluster.servers.filter((x) => x.running));
      const r = await call(s, "PUT", "/v1/operator/raft/transfer-leadership", undefined, 10_000);
      ctx.log(`transfer-leadership via ${s.name}: ${"error" in r ? r.error : `${r.status} ${r.text.slice(0, 100)}`}`);
      return async () => {};
    }
    case "remove-readd": {
      // Kill a server, remove it from the configuration, and when the fault ends bring it back with
      // an empty data dir: it joins as a new server and is promoted once caught up. Its data is
      // wiped only when the removal is certain (the configuration no longer holds it).
      const i = rng.int(0, n);
      const s = cluster.servers[i]!;
      const via = cluster.servers.find((x) => x !== s && x.running);
      await s.kill();
      let removed = false;
      let note = "no running server to ask";
      if (via) {
        const id = await serverId(via, s.rpcAddr);
        if (id && id !== "unknown") {
          const r = await call(via, "DELETE", `/v1/operator/raft/peer?id=${encodeURIComponent(id)}`, undefined, 10_000);
          note = "error" in r ? r.error : `${r.status} ${r.text.slice(0, 100)}`;
          removed = (await serverId(via, s.rpcAddr)) === undefined;
        } else note = id === "unknown" ? "configuration unreadable" : "not in the configuration";
      }
      ctx.log(`remove s${i}: ${note}${removed ? "" : " (not removed: it will come back with its data)"}`);
      return async () => {
        if (removed) {
          rmSync(s.dataDir, { recursive: true, force: true });
          mkdirSync(s.dataDir, { recursive: true });
        }
        s.start();
        await s.waitHttp(20_000);
        ctx.log(`s${i} back${removed ? " with an empty data dir" : ""}`);
      };
    }
    case "restore": {
      const saved = ctx.saved;
      if (!saved) return async () => {};
      const s = rng.pick(cluster.servers.filter((x) => x.running));
      // The restore writes every key back to its saved value: one write per key in the history,
      // all sharing the restore call's interval and outcome.
      const ops = [...saved.values].map(([key, value]) => ctx.history.invoke(RESTORE_PROCESS, key, { kind: "write", value }));
      let outcome: string;
      let status: "ok" | "fail" | "info";
      try {
        const r = await fetch(`${s.url}/v1/operator/snapshot`, { method: "PUT", body: saved.bytes, signal: AbortSignal.timeout(20_000) });
        outcome = `${r.status} ${(await r.text()).slice(0, 120)}`;
        status = r.status === 200 ? "ok" : r.status >= 400 && r.status < 500 ? "fail" : "info";
      } catch (e) {
        outcome = (e as Error).message;
        status = "info";
      }
      for (const op of ops) ctx.history.complete(op, status, undefined, `restore via ${s.name}: ${outcome}`);
      ctx.log(`restore via ${s.name}: ${outcome}`);
      return async () => {};
    }
  }
}

interface RaftConfiguration {
  Servers?: { ID: string; Address: string }[];
}

/** The raft ID of the server advertising `address` per `via`'s (leader-forwarded) configuration; "unknown" when it could not be read. */
async function serverId(via: ClusterServer, address: string): Promise<string | undefined | "unknown"> {
  const r = await fetch(`${via.url}/v1/operator/raft/configuration`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  if (r?.status !== 200) return "unknown";
  const c = (await r.json()) as RaftConfiguration;
  return c.Servers?.find((x) => x.Address === address)?.ID;
}

/** Saves a snapshot through `server` and reads back each key's value at that point (no writes run meanwhile). */
export async function saveSnapshot(ctx: FaultContext, keys: readonly string[]): Promise<SavedSnapshot> {
  const leader = await ctx.cluster.waitForLeader(20_000);
  const r = await fetch(`${leader.url}/v1/operator/snapshot`, { signal: AbortSignal.timeout(20_000) });
  if (r.status !== 200) throw new Error(`snapshot save: ${r.status} ${await r.text()}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const values = new Map<string, string | null>();
  for (const k of keys) {
    const g = await call(leader, "GET", `/v1/var/${VAR_PREFIX}${k}`);
    if ("error" in g) throw new Error(`read ${k} after save: ${g.error}`);
    values.set(k, g.status === 404 ? null : (g.body?.Items?.v ?? null));
  }
  return { bytes, values };
}
