// What the snapshot cluster tests share: a 3-server cluster with extra HCL, the whole variable state of
// a server read over HTTP, offline snapshot files of many variables, raw uploads and downloads, RSS.
import { expect } from "bun:test";
import { createHash } from "node:crypto";
import { appendFileSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSnapshotFile, type WriteResult } from "../../src/snapshot/writer.ts";
import { Cluster, freePort, ok, type ClusterServer, type ServerOptions } from "./harness.ts";

export type ClusterOptions = ServerOptions & {
  extraHcl?: (name: string, dataDir: string) => string;
  n?: number;
  /** Environment every boot of every server gets on top of the test's own. */
  env?: Record<string, string>;
  /** Run a copy of this compiled binary instead of build/node (a bench's baseline). */
  binary?: string;
};

/** Three servers that know each other; `extraHcl(name)` is appended to each config before start. */
export async function startCluster(label: string, opts: ClusterOptions = {}): Promise<Cluster> {
  const c = new Cluster(label);
  try {
    await startClusterIn(c, opts);
  } catch (e) {
    await c.cleanup();
    throw e;
  }
  return c;
}

/** startCluster's work on a cluster made (and cleaned up) by the caller, as `useCluster`'s `start`. */
export async function startClusterIn(c: Cluster, opts: ClusterOptions = {}): Promise<void> {
  await c.init(opts.binary ? { binary: opts.binary } : {});
  if (opts.env) withEnv(join(c.dir, "node"), opts.env);
  const n = opts.n ?? 3;
  const ports = Array.from({ length: n }, () => ({ http: freePort(), rpc: freePort() }));
  const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
  for (const p of ports) {
    const s = c.add({ bootstrapExpect: n, ...opts, ports: p, join: all });
    if (opts.extraHcl) {
      appendFileSync(s.configPath, opts.extraHcl(s.name, s.dataDir));
    }
  }
  for (const s of c.servers) s.start();
  await Promise.all(c.servers.map((s) => s.waitHttp()));
  await c.waitForLeader(20_000);
}

/**
 * Puts a wrapper in place of the cluster's copy of the binary that exports `env` and execs the binary (the
 * same process: kill and pid stay right). Bun.spawn hands children the environment the test process began
 * with, not later changes to process.env, and the harness spawns with no env of its own.
 */
function withEnv(binary: string, env: Record<string, string>): void {
  renameSync(binary, `${binary}.bin`);
  const exports = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k) || /'/.test(v)) throw new Error(`cannot pass ${k} through the wrapper`);
    return `export ${k}='${v}'\n`;
  });
  writeFileSync(binary, `#!/bin/sh\n${exports.join("")}exec '${binary}.bin' "$@"\n`, { mode: 0o755 });
}

export interface VarMeta {
  Path: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Every variable's metadata on `s` (stale: this server's own view), paged. */
export async function listVars(s: ClusterServer, timeoutMs = 20_000): Promise<VarMeta[]> {
  const out: VarMeta[] = [];
  let next: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const q: string = `/v1/vars?stale&per_page=1000${next ? `&next_token=${encodeURIComponent(next)}` : ""}`;
    const r: Response = await fetch(`${s.url}${q}`, { signal: AbortSignal.timeout(timeoutMs) });
    if (r.status !== 200) ok({ status: r.status, text: await r.text() }, `list on ${s.name}`);
    out.push(...((await r.json()) as VarMeta[]).map((v) => ({ Path: v.Path, CreateIndex: v.CreateIndex, ModifyIndex: v.ModifyIndex })));
    next = r.headers.get("X-Edgenode-NextToken");
    if (!next) return out;
  }
  throw new Error("too many pages");
}

/** SHA-256 over the sorted list of paths and indexes: equal lists, equal fingerprints. */
export function fingerprint(list: VarMeta[]): string {
  const h = createHash("sha256");
  for (const v of [...list].sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0)))
    h.update(`${v.Path}\0${v.CreateIndex}\0${v.ModifyIndex}\n`);
  return h.digest("hex");
}

/** Items of one variable read on `s` alone (stale); undefined when absent. */
export async function getItems(s: ClusterServer, path: string): Promise<Record<string, string> | undefined> {
  const r = await s.get<{ Items: Record<string, string> }>(`/v1/var/${path}?stale`);
  if (r.status === 404) return undefined;
  return ok(r, `GET ${path} on ${s.name}`).body.Items;
}

/** The full state of `s`: path -> {indexes, items}, as a stable JSON string. */
export async function fullState(s: ClusterServer): Promise<string> {
  const list = await listVars(s);
  const rows: string[] = [];
  for (const v of list.sort((a, b) => (a.Path < b.Path ? -1 : 1)))
    rows.push(JSON.stringify([v.Path, v.CreateIndex, v.ModifyIndex, await getItems(s, v.Path)]));
  return rows.join("\n");
}

/** A variable record as the state machine persists it. */
export function varRecord(path: string, items: Record<string, string>, index: number): { t: string; v: unknown } {
  return {
    t: "vars",
    v: { Path: path, Items: items, CreateIndex: index, ModifyIndex: index, CreateTime: 1_700_000_000_000, ModifyTime: 1_700_000_000_000 },
  };
}

/** 4 MiB of xorshift-random base64-alphabet text (6 bits of entropy a byte) to slice values from. */
export function textPool(seed: number): string {
  const pool = Buffer.alloc(4 << 20);
  let x = seed >>> 0 || 1;
  const ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < pool.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pool[i] = ALPHA.charCodeAt((x >>> 0) & 63);
  }
  return pool.toString("latin1");
}

/** Where value `i` starts in the pool: a multiplicative hash, so nearby records rarely overlap (zstd would find the repeats). */
export function valueStart(i: number, poolLength: number, valueBytes: number): number {
  return (Math.imul(i + 1, 0x9e3779b1) >>> 0) % (poolLength - valueBytes);
}

/**
 * Writes a valid snapshot file of `n` variables `<tag>/k<i>` of about `valueBytes` each (incompressible
 * base64-ish text), plus `marker/state = {tag}`: a state that is recognisable as a whole.
 */
export async function writeVarsSnapshot(path: string, tag: string, n: number, valueBytes = 1000, seed = 1): Promise<WriteResult> {
  const text = textPool(seed);
  function* records(): Generator<{ t: string; v: unknown }> {
    yield varRecord("marker/state", { tag }, 7);
    for (let i = 0; i < n; i++) {
      const start = valueStart(i, text.length, valueBytes);
      yield varRecord(`${tag}/k${i}`, { data: text.slice(start, start + valueBytes) }, 10 + i);
    }
  }
  return writeSnapshotFile(
    path,
    {
      producer: "0.1.0-test",
      region: "global",
      clusterId: "00000000-0000-4000-8000-000000000000",
      snapshotId: `offline-${tag}`,
      index: 10 + n,
      term: 1,
      created: "2026-01-02T03:04:05Z",
      counts: { vars: n + 1 },
    },
    records(),
  );
}

export interface Upload {
  status: number;
  text: string;
  body: unknown;
}

/** PUT the file's bytes as a streamed request body (chunked), as a client with a file stream would. */
export async function restoreFile(s: ClusterServer, file: string, query = "", signal?: AbortSignal): Promise<Upload> {
  const r = await fetch(`${s.url}/v1/operator/snapshot${query}`, {
    method: "PUT",
    body: Bun.file(file).stream(),
    duplex: "half",
    signal: signal ?? AbortSignal.timeout(300_000),
  });
  return parsed(r);
}

/** PUT these bytes (for small crafted files). */
export async function restoreBytes(s: ClusterServer, bytes: Uint8Array, query = ""): Promise<Upload> {
  const r = await fetch(`${s.url}/v1/operator/snapshot${query}`, { method: "PUT", body: bytes, signal: AbortSignal.timeout(60_000) });
  return parsed(r);
}

async function parsed(r: Response): Promise<Upload> {
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // error bodies may be plain text
  }
  return { status: r.status, text, body };
}

/** GET a snapshot into `file`; returns the status, index header and whether the Digest matches the body. */
export async function saveFile(
  s: ClusterServer,
  file: string,
  query = "",
): Promise<{ status: number; index: number; digestOk: boolean; size: number; digest: string }> {
  const r = await fetch(`${s.url}/v1/operator/snapshot${query}`, { signal: AbortSignal.timeout(300_000) });
  if (r.status !== 200) throw new Error(`save on ${s.name}: ${r.status} ${await r.text()}`);
  const h = createHash("sha256");
  const w = Bun.file(file).writer();
  let size = 0;
  for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) {
    h.update(c);
    w.write(c);
    size += c.byteLength;
  }
  await w.end();
  const digest = r.headers.get("Digest") ?? "";
  return {
    status: r.status,
    index: Number(r.headers.get("X-Edgenode-Index")),
    digestOk: digest === `sha-256=${h.digest("base64")}`,
    size,
    digest,
  };
}

/** Resident set size of a process in bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** The X-Edgenode-Index a read on `s` reports. */
export async function indexOf(s: ClusterServer, path = "/v1/vars?stale"): Promise<number> {
  const r = await fetch(`${s.url}${path}`, { signal: AbortSignal.timeout(10_000) });
  await r.arrayBuffer();
  return Number(r.headers.get("X-Edgenode-Index"));
}

export interface RestoredState {
  /** A variable the restored snapshot holds... */
  present: string;
  /** ...with these items, when they tell the snapshot apart from the state it replaced. */
  items?: Record<string, string>;
  /** A variable the state before the restore held and the snapshot does not. */
  absent?: string;
  /** The restore's reply Index: the read's X-Edgenode-Index is at least this. */
  index?: number;
  token?: string;
}

/**
 * A restore's 200 means the new state is committed and the leader serves it: right after the 200, one
 * linearizable read (no ?stale: a follower forwards it to the leader) of each named variable, with no
 * retry, must see the snapshot's state. Call it on the very next line after the restore answered.
 */
export async function expectLeaderServesRestored(s: { url: string }, want: RestoredState): Promise<void> {
  const headers: Record<string, string> = want.token ? { "X-Edgenode-Token": want.token } : {};
  const read = async (path: string) => {
    const r = await fetch(`${s.url}/v1/var/${path}`, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await r.text();
    return {
      status: r.status,
      index: Number(r.headers.get("X-Edgenode-Index")),
      items: r.status === 200 ? (JSON.parse(text) as { Items: Record<string, string> }).Items : text,
    };
  };
  const got = await read(want.present);
  expect({ path: want.present, status: got.status }).toEqual({ path: want.present, status: 200 });
  if (want.items) expect(got.items).toEqual(want.items);
  if (want.index !== undefined) expect(got.index).toBeGreaterThanOrEqual(want.index);
  if (want.absent !== undefined) {
    const gone = await read(want.absent);
    expect({ path: want.absent, status: gone.status }).toEqual({ path: want.absent, status: 404 });
  }
}
