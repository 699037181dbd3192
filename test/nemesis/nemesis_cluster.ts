// N servers of the compiled binary on loopback where each advertises (and is joined at) the port of
// its own LinkProxy, not its real RPC port: every server-to-server connection crosses the proxies.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterServer, compiledBinary, freePort, keygen, unreachableAs, waitFor } from "../cluster/harness.ts";
import { Network } from "./network.ts";
import type { SeededRandom } from "./seeded_random.ts";

export interface NemesisClusterOptions {
  size: number;
  dir: string;
  rng: SeededRandom;
  snapshotThreshold?: number;
  trailingLogs?: number;
}

export class NemesisCluster {
  readonly servers: ClusterServer[] = [];
  readonly network: Network;

  constructor(private readonly o: NemesisClusterOptions) {
    this.network = new Network(o.size, o.rng);
  }

  async start(): Promise<void> {
    const binary = await compiledBinary(this.o.dir);
    const key = keygen(binary);
    const ports = Array.from({ length: this.o.size }, () => ({ http: freePort(), rpc: freePort(), proxy: freePort() }));
    for (let i = 0; i < this.o.size; i++) {
      const p = ports[i]!;
      const name = `s${i}`;
      const dataDir = join(this.o.dir, name, "data");
      mkdirSync(dataDir, { recursive: true });
      const configPath = join(this.o.dir, name, "agent.hcl");
      const join_ = ports.filter((_, j) => j !== i).map((q) => `"127.0.0.1:${q.proxy}"`);
      writeFileSync(
        configPath,
        `name = "${name}"
data_dir = "${dataDir}"
bind_addr = "127.0.0.1"
log_level = "DEBUG"
ports {
  http = ${p.http}
  rpc  = ${p.rpc}
}
advertise {
  http = "127.0.0.1:${p.http}"
  rpc  = "127.0.0.1:${p.proxy}"
}
server {
  enabled          = true
  bootstrap_expect = ${this.o.size}
  server_join {
    retry_join     = [${join_.join(", ")}]
    retry_interval = "500ms"
  }
  snapshot_threshold = ${this.o.snapshotThreshold ?? 300}
  trailing_logs      = ${this.o.trailingLogs ?? 100}
  encrypt            = "${key}"
}
`,
      );
      // rpcPort is the advertised (proxy) port so that rpcAddr matches what /v1/status/leader names.
      this.servers.push(new ClusterServer(name, p.http, p.proxy, dataDir, configPath, binary, this.o.dir));
      await this.network.addProxy(i, p.proxy, p.rpc, () => this.pids()).start();
    }
    for (const s of this.servers) s.start();
    await Promise.all(this.servers.map((s) => s.waitHttp(20_000)));
  }

  pids(): (number | undefined)[] {
    return this.servers.map((s) => (s.running ? s.proc?.pid : undefined));
  }

  /** The server every given server (default all running) names as leader, within `timeoutMs`. */
  async waitForLeader(timeoutMs: number, among: ClusterServer[] = this.servers.filter((s) => s.running)): Promise<ClusterServer> {
    const addr = await waitFor("a leader every server agrees on", timeoutMs, async () => {
      const seen = await Promise.all(among.map((s) => s.leader().catch(unreachableAs(""))));
      const first = seen[0];
      return first && seen.every((l) => l === first) ? first : undefined;
    });
    const s = this.servers.find((x) => x.rpcAddr === addr);
    if (!s) throw new Error(`leader ${addr} is not one of this cluster's servers`);
    return s;
  }

  /** Index of the server some running server currently names as leader, if any. */
  async currentLeader(): Promise<number | undefined> {
    for (const s of this.servers) {
      if (!s.running) continue;
      const addr = await s.leader().catch(unreachableAs(""));
      const i = this.servers.findIndex((x) => x.rpcAddr === addr);
      if (i >= 0) return i;
    }
    return undefined;
  }

  async stop(): Promise<void> {
    for (const s of this.servers) s.cont();
    await Promise.all(this.servers.map((s) => s.kill()));
    await this.network.stop();
  }
}
