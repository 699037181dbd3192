// Real-process cluster harness: runs N copies of the compiled binary on loopback, each with its own
// data dir, HCL config and stderr log file, and gives tests kill/restart/stop/cont and HTTP helpers.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { afterAll, beforeAll } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { NotYet, retryable, waitFor as waitUntil } from "../support/wait.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BINARY = join(ROOT, "build", "node");
const BUILD_TIMEOUT_MS = 60_000;
const HTTP_TIMEOUT_MS = 10_000;

/** Newest mtime of any file under src/ (ms). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Builds build/node when it is missing or older than the sources, then copies it into `dir` so that
 * another engineer's rebuild cannot swap the binary under a running test. Returns the copy's path.
 */
export async function compiledBinary(dir: string): Promise<string> {
  const stale = !existsSync(BINARY) || statSync(BINARY).mtimeMs < newestSource(join(ROOT, "src"));
  if (stale) {
    const p = Bun.spawn([process.execPath, join(ROOT, "build", "build.ts")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), BUILD_TIMEOUT_MS);
    const code = await p.exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`build failed (exit ${code}): ${await new Response(p.stderr).text()}`);
  }
  const copy = join(dir, "node");
  copyFileSync(BINARY, copy);
  return copy;
}

export { freePort };
export { NotYet };

/**
 * Polls `cond` until it returns a truthy value or the deadline passes (then throws with `what`). Only
 * "not reachable yet" errors are retried (see test/support/wait.ts); an assertion failure ends it.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  cond: () => Promise<T | undefined | false> | T | undefined | false,
  everyMs = 50,
): Promise<T> {
  return waitUntil(async () => (await cond()) || undefined, timeoutMs, what, everyMs) as Promise<T>;
}

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** For `.catch`: a server not reachable (yet, or any more) answers `value`; any other error goes on. */
export function unreachableAs<V>(value: V): (e: unknown) => V {
  return (e) => {
    if (retryable(e)) return value;
    throw e;
  };
}

/**
 * Passes a 200 through; a 503 or 504 (no leader yet, unavailable, timed out) is "not yet" for a probe,
 * any other status is an error.
 */
export function ok<R extends { status: number; text: string }>(r: R, what: string): R {
  if (r.status === 200) return r;
  const msg = `${what}: ${r.status} ${r.text.slice(0, 200)}`;
  throw r.status === 503 || r.status === 504 ? new NotYet(msg) : new Error(msg);
}

/** A new cluster key from the binary, the way the README has an operator make one. */
export function keygen(binary: string): string {
  const p = Bun.spawnSync([binary, "operator", "keygen"], { stdout: "pipe", stderr: "pipe" });
  const key = p.stdout.toString().trim();
  if (p.exitCode !== 0 || !/^[A-Za-z0-9+/]{43}=$/.test(key))
    throw new Error(`operator keygen failed (exit ${p.exitCode}): ${p.stderr.toString()}${key}`);
  return key;
}

/** A second of stabilization for the harness's servers: promotion about as quick as before autopilot (10 s by default). */
const STABILIZATION_LINE = '  autopilot { server_stabilization_time = "1s" }\n';

export interface ServerOptions {
  /** server.encrypt; default the cluster's own key. [] writes no key (then the server runs unauthenticated on loopback). */
  encrypt?: string[];
  /** Lines added inside the server block (e.g. `insecure_rpc = true`). */
  serverHcl?: string;
  /** bind_addr; default "127.0.0.1". */
  bindAddr?: string;
  bootstrapExpect?: number;
  snapshotThreshold?: number;
  trailingLogs?: number;
  logLevel?: string;
  /** Write STABILIZATION_LINE (unless serverHcl has an autopilot block); Cluster.add sets it (promotion as quick as before autopilot). */
  quickPromotion?: boolean;
}

export class ClusterServer {
  proc: ReturnType<typeof Bun.spawn> | undefined;
  private boots = 0;
  readonly logFiles: string[] = [];

  constructor(
    readonly name: string,
    readonly httpPort: number,
    readonly rpcPort: number,
    readonly dataDir: string,
    readonly configPath: string,
    /** The binary the next start() runs (a test may swap it between boots: an upgrade in place). */
    public binary: string,
    private readonly logDir: string,
  ) {}

  get rpcAddr(): string {
    return `127.0.0.1:${this.rpcPort}`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /**
   * The cluster's own binary, when the harness wrote its short autopilot stabilization into the
   * config: kept for that binary, taken out for any other (an older release refuses the key).
   */
  ownBinary: string | undefined;

  /** Starts the process (stdout and stderr appended to a per-boot log file). */
  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    if (this.ownBinary !== undefined) {
      const text = readFileSync(this.configPath, "utf8");
      const want = this.binary === this.ownBinary;
      const has = text.includes(STABILIZATION_LINE);
      if (want && !has) writeFileSync(this.configPath, text.replace("server {\n", `server {\n${STABILIZATION_LINE}`));
      else if (!want && has) writeFileSync(this.configPath, text.replace(STABILIZATION_LINE, ""));
    }
    this.boots++;
    const log = join(this.logDir, `${this.name}.${this.boots}.log`);
    this.logFiles.push(log);
    const fd = openSync(log, "a");
    try {
      this.proc = Bun.spawn([this.binary, "agent", "-config", this.configPath], { stdin: "ignore", stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
  }

  /** Waits until the HTTP API answers (any status). */
  async waitHttp(timeoutMs = 10_000): Promise<void> {
    await waitFor(`${this.name} HTTP`, timeoutMs, async () => {
      if (!this.running) throw new Error(`${this.name} exited (${this.proc?.exitCode ?? this.proc?.signalCode}):\n${this.tail(20)}`);
      const r = await fetch(`${this.url}/v1/status/leader`, { signal: AbortSignal.timeout(1000) });
      return r.status > 0;
    });
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    p.kill("SIGKILL");
    await p.exited;
  }

  /** SIGTERM (graceful) and wait for the exit, SIGKILL after a deadline. */
  async terminate(timeoutMs = 10_000): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    p.kill("SIGCONT");
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    await p.exited;
    clearTimeout(t);
  }

  stop(): void {
    this.proc?.kill("SIGSTOP");
  }

  cont(): void {
    this.proc?.kill("SIGCONT");
  }

  async restart(): Promise<void> {
    await this.kill();
    this.start();
    await this.waitHttp();
  }

  /** The concatenated log of every boot of this server. */
  log(): string {
    return this.logFiles.map((f) => (existsSync(f) ? readFileSync(f, "utf8") : "")).join("");
  }

  /** The last `lines` lines of the current boot's log. */
  tail(lines = 40): string {
    const f = this.logFiles.at(-1);
    if (!f || !existsSync(f)) return "";
    return readFileSync(f, "utf8")
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  }

  async http<T = unknown>(method: string, path: string, body?: unknown, timeoutMs = HTTP_TIMEOUT_MS): Promise<HttpResult<T>> {
    const init: RequestInit = { method, signal: AbortSignal.timeout(timeoutMs) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    const r = await fetch(`${this.url}${path}`, init);
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain-text error bodies stay strings
    }
    return { status: r.status, headers: r.headers, body: parsed as T, text };
  }

  get<T = unknown>(path: string, timeoutMs?: number): Promise<HttpResult<T>> {
    return this.http<T>("GET", path, undefined, timeoutMs);
  }

  put<T = unknown>(path: string, body?: unknown, timeoutMs?: number): Promise<HttpResult<T>> {
    return this.http<T>("PUT", path, body, timeoutMs);
  }

  /** PUT a variable and return the response; throws unless 200. */
  async putVar(path: string, items: Record<string, string>, query = ""): Promise<VarReply> {
    const r = await this.put<VarReply>(`/v1/var/${path}${query}`, { Items: items });
    if (r.status !== 200) throw new Error(`PUT ${path} on ${this.name}: ${r.status} ${r.text}`);
    return r.body;
  }

  async leader(): Promise<string> {
    const r = await this.get<string>("/v1/status/leader", 2000);
    return r.status === 200 ? r.body : "";
  }

  async raftStats(): Promise<Record<string, unknown>> {
    const r = ok(await this.get<{ Stats: { raft: Record<string, unknown> } }>("/v1/agent/self", 2000), `agent self on ${this.name}`);
    return r.body.Stats.raft;
  }
}

export interface VarReply {
  Path: string;
  Items: Record<string, string>;
  CreateIndex: number;
  ModifyIndex: number;
}

/** N servers of the compiled binary on loopback in one temp dir. */
export class Cluster {
  readonly servers: ClusterServer[] = [];
  readonly dir: string;
  /** Set when a test failed: cleanup keeps the temp dir (logs, data) for a look. */
  keep = false;
  private binary = "";
  /** False when running a copied (older) binary, which may not know newer configuration keys. */
  private ownBinary = true;
  /** The key in every server's `server { encrypt }`, made by `node operator keygen` in init(). */
  key = "";

  constructor(label: string) {
    this.dir = mkdtempSync(join(tmpdir(), `edgenode-cluster-${label}-`));
  }

  /**
   * `binary`: run a copy of this compiled binary instead of build/node; `keyed: false`: make no key and
   * write none (for a binary from before `server { encrypt }`).
   */
  async init(opts: { binary?: string; keyed?: boolean } = {}): Promise<void> {
    if (opts.binary) {
      this.binary = join(this.dir, "node");
      this.ownBinary = false;
      copyFileSync(opts.binary, this.binary);
    } else {
      this.binary = await compiledBinary(this.dir);
    }
    if (opts.keyed !== false) this.key = keygen(this.binary);
  }

  /** The compiled binary the servers run (for CLI calls such as keygen). */
  get binaryPath(): string {
    return this.binary;
  }

  /**
   * Adds a server (not started). retry_join lists every existing server's RPC address (and, for the
   * first `bootstrapExpect` servers, those that will be added with it: pass `peers`).
   */
  add(opts: ServerOptions & { join?: string[]; ports?: { http: number; rpc: number } } = {}): ClusterServer {
    const i = this.servers.length + 1;
    const name = `s${i}`;
    const ports = opts.ports ?? { http: freePort(), rpc: freePort() };
    const dataDir = join(this.dir, name, "data");
    mkdirSync(dataDir, { recursive: true });
    const configPath = join(this.dir, name, "agent.hcl");
    const join_ = (opts.join ?? this.servers.map((s) => s.rpcAddr)).filter((a) => a !== `127.0.0.1:${ports.rpc}`);
    writeFileSync(
      configPath,
      hcl(name, dataDir, ports, join_, { encrypt: this.key ? [this.key] : [], quickPromotion: this.ownBinary, ...opts }),
    );
    const s = new ClusterServer(name, ports.http, ports.rpc, dataDir, configPath, this.binary, this.dir);
    if (this.ownBinary && !opts.serverHcl?.includes("autopilot")) s.ownBinary = this.binary;
    this.servers.push(s);
    return s;
  }

  /** Starts `n` servers that all know each other and expect `n` for bootstrap. */
  async startServers(n: number, opts: ServerOptions = {}): Promise<void> {
    const ports = Array.from({ length: n }, () => ({ http: freePort(), rpc: freePort() }));
    const all = ports.map((p) => `127.0.0.1:${p.rpc}`);
    for (const p of ports) this.add({ bootstrapExpect: n, ...opts, ports: p, join: all });
    for (const s of this.servers) s.start();
    await Promise.all(this.servers.map((s) => s.waitHttp()));
  }

  running(): ClusterServer[] {
    return this.servers.filter((s) => s.running);
  }

  /** Waits until every given server (default: every running one) names the same non-empty leader; returns it. */
  async waitForLeader(timeoutMs = 10_000, among: ClusterServer[] = this.running(), everyMs = 50): Promise<ClusterServer> {
    const addr = await waitFor(
      "a leader every server agrees on",
      timeoutMs,
      async () => {
        const seen = await Promise.all(among.map((s) => s.leader().catch(unreachableAs(""))));
        const first = seen[0];
        // A killed leader is still named by the survivors until they notice: it must be one of `among`.
        return first && seen.every((l) => l === first) && among.some((s) => s.rpcAddr === first) ? first : undefined;
      },
      everyMs,
    );
    const s = this.servers.find((x) => x.rpcAddr === addr);
    if (!s) throw new Error(`leader ${addr} is not one of this cluster's servers`);
    return s;
  }

  followers(leader: ClusterServer): ClusterServer[] {
    return this.running().filter((s) => s !== leader);
  }

  /** Log tails of every server, for a failing test's output. */
  tails(lines = 30): string {
    return this.servers.map((s) => `----- ${s.name} (${s.rpcAddr}, http ${s.httpPort}) -----\n${s.tail(lines)}`).join("\n");
  }

  /** Kills every child; keeps the temp dir when `keep` (a failed run), else removes it. */
  async cleanup(): Promise<void> {
    for (const s of this.servers) s.cont();
    await Promise.all(this.servers.map((s) => s.kill()));
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A cluster for the enclosing describe block (or file): started in a beforeAll, cleaned up in an afterAll.
 * By default 3 servers that know each other (with `server`'s options), and a leader they agree on within
 * `leaderMs` (false: not waited for); `start` replaces all that (init included). Usable in tests once the
 * beforeAll has run; a beforeAll registered later sees it started.
 */
export function useCluster(
  label: string,
  opts: { server?: ServerOptions; leaderMs?: number | false; start?: (c: Cluster) => Promise<void>; timeoutMs?: number } = {},
): Cluster {
  const cluster = new Cluster(label);
  beforeAll(async () => {
    if (opts.start) return opts.start(cluster);
    await cluster.init();
    await cluster.startServers(3, opts.server);
    if (opts.leaderMs !== false) await cluster.waitForLeader(opts.leaderMs ?? 15_000);
  }, opts.timeoutMs ?? 60_000);
  afterAll(() => cluster.cleanup());
  return cluster;
}

/** A server's configuration, as the README shows it plus test ports and timings. */
export function hcl(name: string, dataDir: string, ports: { http: number; rpc: number }, join_: string[], o: ServerOptions): string {
  const keys = o.encrypt ?? [];
  return `name = "${name}"
data_dir = "${dataDir}"
bind_addr = "${o.bindAddr ?? "127.0.0.1"}"
log_level = "${o.logLevel ?? "INFO"}"
ports {
  http = ${ports.http}
  rpc  = ${ports.rpc}
}
advertise {
  http = "127.0.0.1:${ports.http}"
  rpc  = "127.0.0.1:${ports.rpc}"
}
server {
  enabled          = true
  bootstrap_expect = ${o.bootstrapExpect ?? 0}
  server_join {
    retry_join     = [${join_.map((a) => `"${a}"`).join(", ")}]
    retry_interval = "500ms"
  }
  snapshot_threshold = ${o.snapshotThreshold ?? 8192}
  trailing_logs      = ${o.trailingLogs ?? 10240}
${o.quickPromotion && !o.serverHcl?.includes("autopilot") ? STABILIZATION_LINE : ""}${keys.length === 1 ? `  encrypt = "${keys[0]}"\n` : keys.length > 1 ? `  encrypt = [${keys.map((k) => `"${k}"`).join(", ")}]\n` : ""}${o.serverHcl ?? ""}
}
`;
}

/**
 * Runs `fn` and, when it throws, prints every server's log tail (and keeps the temp dir) before
 * rethrowing, so a failing cluster test shows what the servers saw.
 */
export async function withLogs(cluster: Cluster, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    console.error(`cluster test failed; logs in ${cluster.dir}\n${cluster.tails()}`);
    cluster.keep = true;
    throw e;
  }
}
