// Status.RaftStats is a server-to-server call: with the cluster key on, a server of this region may ask
// it, an unauthenticated session (which could learn the cluster id) and a federated region's server may not.
import { expect, test } from "bun:test";
import { devConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { RAFT_STATS_RPC } from "../../src/server/raft_stats.ts";
import { ServerSecurity } from "../../src/server/server_security.ts";
import { generateClusterKey } from "../../src/transport/cluster_keys.ts";
import { ANONYMOUS } from "../../src/transport/peer_identity.ts";

test("only an authenticated server of this region may ask a server for its raft stats", () => {
  const cfg = devConfig("/nonexistent");
  const sec = new ServerSecurity({
    cfg: { ...cfg, server: { ...cfg.server, encrypt: [generateClusterKey()] } },
    log: silentLogger(),
    stats: new Metrics(),
    logAt: () => {},
    nodeId: () => "a",
    regions: () => [cfg.region, "far"],
    dropSessions: () => 0,
  });
  const peer = (region: string) => ({ kind: "key" as const, serverId: "b", region, keyId: "k" });
  expect(sec.peerAllowed(RAFT_STATS_RPC, peer(cfg.region))).toBe(true);
  expect(sec.peerAllowed(RAFT_STATS_RPC, peer("far"))).toBe(false);
  expect(sec.peerAllowed(RAFT_STATS_RPC, ANONYMOUS)).toBe(false);
  sec.stop();
});
