// A 3-member etcd 3.4 on loopback loaded with the same variables as a snapshot bench (txns of 1000
// puts of the bench's values), then `etcdctl snapshot save` timed `runs` times. etcd 3.4 is Debian 12's
// (`apt-get install etcd-server etcd-client`); without it the result is a sentence saying so.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { freePort, waitFor } from "../cluster/harness.ts";
import { valueStart } from "../cluster/snapshot_cluster.ts";
import { etcdCommand } from "./etcd_member.ts";

const MB = 1e6;
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);

/** Peak RSS (VmHWM) of a process in bytes; NaN without a pid. */
export function hwm(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** A loaded 3-member etcd: `save` times one `etcdctl snapshot save` (the file removed after); `stop` kills the members. */
export interface EtcdLoaded {
  save(file: string): Promise<{ ms: number; size: number }>;
  rss(): number[];
  stop(): Promise<void>;
}

export async function etcdSnapshotRuns(
  dir: string,
  pool: string,
  { vars: VARS, value: VALUE, runs: RUNS }: { vars: number; value: number; runs: number },
): Promise<{ mbps: number[]; ms: number[]; size: number; rss: number[] } | string> {
  const etcd = await startEtcdLoaded(dir, pool, { vars: VARS, value: VALUE });
  if (typeof etcd === "string") return etcd;
  try {
    const out: number[] = [];
    const times: number[] = [];
    let size = 0;
    for (let run = 0; run < RUNS; run++) {
      const r = await etcd.save(join(dir, `etcd-${run}.db`));
      size = r.size;
      out.push(mbps(r.size, r.ms));
      times.push(r.ms);
    }
    return { mbps: out, ms: times, size, rss: etcd.rss() };
  } finally {
    await etcd.stop();
  }
}

/** A 3-member etcd in `dir` loaded with the bench's variables, kept running; a sentence when etcd is missing. */
export async function startEtcdLoaded(
  dir: string,
  pool: string,
  { vars: VARS, value: VALUE }: { vars: number; value: number },
): Promise<EtcdLoaded | string> {
  if (!Bun.which("etcd") || !Bun.which("etcdctl")) return "etcd/etcdctl not installed";
  const members = [1, 2, 3].map((i) => ({
    name: `m${i}`,
    client: freePort(),
    peer: freePort(),
    dataDir: join(dir, `m${i}`),
    proc: undefined as ReturnType<typeof Bun.spawn> | undefined,
  }));
  for (const m of members) {
    mkdirSync(m.dataDir, { recursive: true });
    const fd = openSync(join(dir, `${m.name}.log`), "a");
    m.proc = Bun.spawn(
      etcdCommand(m, members, ["--max-txn-ops", "1024", "--max-request-bytes", "4194304", "--quota-backend-bytes", String(8 * 1024 ** 3)]),
      { stdin: "ignore", stdout: fd, stderr: fd },
    );
    closeSync(fd);
  }
  const stop = async () => {
    for (const m of members) m.proc?.kill("SIGKILL");
    await Promise.all(members.map((m) => m.proc?.exited));
  };
  try {
    const url = `http://127.0.0.1:${members[0]!.client}`;
    await waitFor(
      "etcd to answer",
      30_000,
      async () =>
        (
          await fetch(`${url}/v3/kv/put`, {
            method: "POST",
            body: JSON.stringify({ key: btoa("probe"), value: btoa("1") }),
            signal: AbortSignal.timeout(2000),
          })
        ).status === 200,
    );
    const BATCH = 1000;
    const batches = Math.ceil(VARS / BATCH);
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let b = next++; b < batches; b = next++) {
          const success = [];
          for (let i = b * BATCH; i < Math.min(VARS, (b + 1) * BATCH); i++) {
            const start = valueStart(i, pool.length, VALUE);
            success.push({ requestPut: { key: btoa(`bench/k${i}`), value: btoa(pool.slice(start, start + VALUE)) } });
          }
          const r = await fetch(`${url}/v3/kv/txn`, {
            method: "POST",
            body: JSON.stringify({ success }),
            signal: AbortSignal.timeout(60_000),
          });
          if (r.status !== 200) throw new Error(`etcd txn: ${r.status} ${await r.text()}`);
        }
      }),
    );
    return {
      async save(file) {
        const t0 = performance.now();
        const p = Bun.spawn(["etcdctl", "--endpoints", url, "snapshot", "save", file], {
          stdout: "pipe",
          stderr: "pipe",
          env: { ...process.env, ETCDCTL_API: "3" },
        });
        const code = await p.exited;
        const ms = performance.now() - t0;
        if (code !== 0) throw new Error(`etcdctl snapshot save: ${await new Response(p.stderr).text()}`);
        const size = statSync(file).size;
        rmSync(file);
        return { ms, size };
      },
      rss: () => members.map((m) => hwm(m.proc?.pid)),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
