// The hashicorp/raft anchor (shared/anchors/hraft: a 3-node key-value server on Debian's hashicorp/raft
// 1.1.2 and raft-boltdb) as a bench baseline: find and build it, start three nodes, reach its HTTP API.
// The nodes are spawned here with the flags its run.sh uses, but on free ports instead of run.sh's fixed
// 7001-7003/8001-8003 (another cluster on this machine may hold those) and as children of the bench, so
// that every exit path can kill them by PID.
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "../cluster/harness.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUILD_TIMEOUT_MS = 180_000;
/** The Debian packages the anchor's imports come from (GOPATH mode, no network). */
export const HRAFT_PACKAGES = ["golang-go", "golang-github-hashicorp-raft-dev", "golang-github-hashicorp-raft-boltdb-dev"];

/** The anchor's folder: $HRAFT_DIR when set, else shared/anchors/hraft beside the checkout or beside its parent (a worktree). */
function anchorDir(): string | undefined {
  const env = process.env.HRAFT_DIR;
  const candidates = env ? [env] : [join(ROOT, "..", "shared", "anchors", "hraft"), join(ROOT, "..", "..", "shared", "anchors", "hraft")];
  return candidates.find((d) => existsSync(join(d, "main.go")));
}

/**
 * Builds the anchor's binary into the temp dir (the anchor folder is read-only) unless a build newer than
 * its main.go is there. Returns the binary's path, or a sentence saying why it cannot be built.
 */
export async function buildHraft(): Promise<{ binary: string } | { unavailable: string }> {
  const dir = anchorDir();
  if (!dir)
    return {
      unavailable: `the anchor is not found (${process.env.HRAFT_DIR ? `no main.go in HRAFT_DIR=${process.env.HRAFT_DIR}` : "set HRAFT_DIR to shared/anchors/hraft"})`,
    };
  if (!Bun.which("go")) return { unavailable: `go is not installed (apt-get install -y ${HRAFT_PACKAGES.join(" ")})` };
  if (
    !existsSync("/usr/share/gocode/src/github.com/hashicorp/raft/api.go") ||
    !existsSync("/usr/share/gocode/src/github.com/hashicorp/raft-boltdb/bolt_store.go")
  )
    return { unavailable: `Debian's hashicorp/raft sources are missing (apt-get install -y ${HRAFT_PACKAGES.join(" ")})` };
  const outDir = join(tmpdir(), "edgenode-bench-hraftkv");
  mkdirSync(outDir, { recursive: true });
  const binary = join(outDir, "hraftkv");
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(join(dir, "main.go")).mtimeMs) return { binary };
  const p = Bun.spawn(["go", "build", "-o", binary, "."], {
    cwd: dir,
    env: { ...process.env, GOPATH: "/usr/share/gocode", GO111MODULE: "off", GOCACHE: join(outDir, "gocache") },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), BUILD_TIMEOUT_MS);
  const code = await p.exited;
  clearTimeout(timer);
  if (code !== 0) return { unavailable: `go build failed (exit ${code}): ${(await new Response(p.stderr).text()).slice(0, 500)}` };
  return { binary };
}

export interface HraftNode {
  name: string;
  raft: string;
  url: string;
  pid: number;
  proc: ReturnType<typeof Bun.spawn>;
}

export class HraftCluster {
  readonly nodes: HraftNode[] = [];

  constructor(
    private readonly binary: string,
    readonly dir: string,
  ) {}

  /** Three nodes, n1 bootstrapping the 3-voter configuration; waits until a leader serves linearizable reads. */
  async start(timeoutMs = 30_000): Promise<void> {
    const ports = [1, 2, 3].map((i) => ({ name: `n${i}`, raft: freePort(), http: freePort() }));
    const boot = ports.map((p) => `${p.name}=127.0.0.1:${p.raft}`).join(",");
    const https = ports.map((p) => `${p.name}=127.0.0.1:${p.http}`).join(",");
    for (const p of ports) {
      const data = join(this.dir, p.name);
      mkdirSync(data, { recursive: true });
      const fd = openSync(join(this.dir, `${p.name}.log`), "a");
      try {
        const args = ["-id", p.name, "-raft", `127.0.0.1:${p.raft}`, "-http", `127.0.0.1:${p.http}`, "-data", data];
        const proc = Bun.spawn([this.binary, ...args, "-bootstrap", boot, "-http-peers", https], {
          stdin: "ignore",
          stdout: fd,
          stderr: fd,
        });
        this.nodes.push({ name: p.name, raft: `127.0.0.1:${p.raft}`, url: `http://127.0.0.1:${p.http}`, pid: proc.pid, proc });
      } finally {
        closeSync(fd);
      }
    }
    const leader = await this.waitForLeader(timeoutMs);
    // As run.sh does: ready when the leader answers a linearizable read (404 for a missing key).
    await waitFor(
      "hraft leader to serve reads",
      timeoutMs,
      async () => (await fetch(`${leader.url}/v1/var/__probe`, { signal: AbortSignal.timeout(2000) })).status === 404,
    );
  }

  /** The node every node names as leader. */
  async waitForLeader(timeoutMs: number): Promise<HraftNode> {
    return waitFor("an hraft leader every node agrees on", timeoutMs, async () => {
      for (const n of this.nodes)
        if (n.proc.exitCode !== null || n.proc.signalCode !== null) throw new Error(`hraft ${n.name} exited:\n${this.tail(n)}`);
      const seen = await Promise.all(
        this.nodes.map(
          async (n) => (await (await fetch(`${n.url}/v1/status/leader`, { signal: AbortSignal.timeout(2000) })).json()) as string,
        ),
      );
      return seen.every((l) => l && l === seen[0]) ? this.nodes.find((n) => n.raft === seen[0]) : undefined;
    });
  }

  /** `n` puts of `size` random bytes, keys `<prefix>%08d`, through the anchor's loader on the leader. */
  async load(leader: HraftNode, n: number, size: number, prefix: string, timeoutMs: number): Promise<void> {
    const r = await fetch(`${leader.url}/v1/debug/load?n=${n}&size=${size}&prefix=${encodeURIComponent(prefix)}`, {
      method: "POST",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await r.json()) as { Done: number; Error?: string };
    if (r.status !== 200 || body.Done !== n) throw new Error(`hraft load: ${r.status} ${JSON.stringify(body)}`);
  }

  async put(leader: HraftNode, key: string, value: string): Promise<void> {
    const r = await fetch(`${leader.url}/v1/var/${key}`, { method: "PUT", body: value, signal: AbortSignal.timeout(30_000) });
    if (r.status !== 200) throw new Error(`hraft PUT ${key}: ${r.status} ${await r.text()}`);
  }

  /** The value of `key` in `node`'s own map (?stale), or undefined when absent. */
  async getStale(node: HraftNode, key: string): Promise<string | undefined> {
    const r = await fetch(`${node.url}/v1/var/${key}?stale`, { signal: AbortSignal.timeout(10_000) });
    const text = await r.text();
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`hraft GET ${key} on ${node.name}: ${r.status} ${text}`);
    return text;
  }

  tail(n: HraftNode, lines = 20): string {
    const f = join(this.dir, `${n.name}.log`);
    return existsSync(f) ? readFileSync(f, "utf8").split("\n").slice(-lines).join("\n") : "";
  }

  tails(lines = 20): string {
    return this.nodes.map((n) => `----- hraft ${n.name} (${n.raft}, ${n.url}) -----\n${this.tail(n, lines)}`).join("\n");
  }

  /** SIGKILL every node and wait for the exits. */
  async stop(): Promise<void> {
    for (const n of this.nodes) n.proc.kill("SIGKILL");
    await Promise.all(this.nodes.map((n) => n.proc.exited));
  }
}
