// Autopilot (issue #25 item 3), real processes. A server SIGKILLed for good is replaced by a new one
// at a new address with no operator command: the new server is promoted after the stabilization time
// and the dead one removed. With two of three dead, nothing is removed, even past the dead-server
// time. A server partitioned away (SIGSTOP) and back within the dead-server time stays.
import { afterEach, expect, test } from "bun:test";
import type { AutopilotHealth } from "../../src/api/autopilot.ts";
import { Cluster, type ClusterServer, waitFor, withLogs } from "./harness.ts";

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
});

const autopilot = (stabilization: string, dead: string) => `  autopilot {
    cleanup_dead_servers               = true
    last_contact_threshold             = "500ms"
    max_trailing_logs                  = 250
    server_stabilization_time          = "${stabilization}"
    dead_server_last_contact_threshold = "${dead}"
  }
`;

async function health(s: ClusterServer): Promise<AutopilotHealth | undefined> {
  const r = await s.get<AutopilotHealth>("/v1/operator/autopilot/health", 2_000).catch(() => undefined);
  return r?.status === 200 ? r.body : undefined;
}

interface Peers {
  Servers: { ID: string; Address: string; Voter: boolean }[];
}
async function stalePeers(s: ClusterServer): Promise<Peers["Servers"] | undefined> {
  const r = await s.get<Peers>("/v1/operator/raft/configuration?stale", 2_000).catch(() => undefined);
  return r?.status === 200 ? r.body.Servers : undefined;
}

async function start(label: string, stabilization: string, dead: string): Promise<{ c: Cluster; leader: ClusterServer }> {
  const c = new Cluster(label);
  cluster = c;
  await c.init();
  await c.startServers(3, { serverHcl: autopilot(stabilization, dead) });
  const leader = await c.waitForLeader(20_000);
  await waitFor("three healthy voters", 20_000, async () => {
    const h = await health(leader);
    return h?.Healthy && h.Servers.length === 3 && h.Servers.every((s) => s.Voter) && h.FailureTolerance === 1;
  });
  return { c, leader };
}

test("a server SIGKILLed for good is replaced by a new server with no operator command", async () => {
  const { c, leader } = await start("autopilot-replace", "2s", "24h");
  await withLogs(c, async () => {
    const victim = c.followers(leader)[0]!;
    const before = (await health(leader))!;
    const deadId = before.Servers.find((s) => s.Address === victim.rpcAddr)!.ID;
    await victim.kill();
    await waitFor("the leader sees the killed server as unhealthy", 10_000, async () => {
      const h = await health(leader);
      return h && !h.Healthy && h.FailureTolerance === 0;
    });
    // Nothing is removed while no replacement is ready (the dead-server time is a day).
    expect((await stalePeers(leader))?.map((s) => s.ID)).toContain(deadId);
    const fresh = c.add({ serverHcl: autopilot("2s", "24h"), join: c.running().map((s) => s.rpcAddr) });
    const t0 = performance.now();
    fresh.start();
    await fresh.waitHttp();
    const done = await waitFor("three healthy voters without the dead server", 2_000 + 15_000, async () => {
      const h = await health(leader);
      return h?.Healthy &&
        h.FailureTolerance === 1 &&
        h.Servers.length === 3 &&
        h.Servers.every((s) => s.Voter && s.Healthy) &&
        !h.Servers.some((s) => s.ID === deadId) &&
        h.Servers.some((s) => s.Address === fresh.rpcAddr)
        ? h
        : undefined;
    });
    // Promoted no sooner than the stabilization time after it could first have been healthy.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2_000);
    expect(done.Servers.find((s) => s.Address === fresh.rpcAddr)?.StableSince).not.toBe("");
    const peers = await stalePeers(fresh);
    expect(peers?.map((s) => s.ID)).not.toContain(deadId);
    expect(leader.log()).toContain("autopilot promoted a server");
    expect(leader.log()).toContain("autopilot removed a failed server");
    const metrics = await leader.get<string>("/v1/metrics?format=prometheus");
    expect(metrics.text).toContain("edgenode_autopilot_failure_tolerance 1");
    expect(metrics.text).toMatch(/edgenode_autopilot_promotions_total\{reason="healthy for the stabilization time"\} 1/);
    expect(metrics.text).toMatch(/edgenode_autopilot_removals_total\{reason="failed, and a healthy replacement votes in its place"\} 1/);
    // Asked of a follower (forwarded to the leader), through the CLI's table.
    const follower = c.followers(leader)[0]!;
    const p = Bun.spawn([c.binaryPath, "operator", "autopilot", "health", "-address", follower.url], { stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect(code).toBe(0);
    expect(out).toContain("Healthy: true");
    expect(out).toContain("Failure tolerance: 1");
    expect(out).not.toContain(deadId);
    expect(out).toContain(fresh.rpcAddr);
  });
}, 60_000);

test("with two of three servers dead, nothing is removed, even past the dead-server time", async () => {
  const { c, leader } = await start("autopilot-two-dead", "1s", "2s");
  await withLogs(c, async () => {
    const before = (await stalePeers(leader))!.map((s) => s.ID).sort();
    for (const f of c.followers(leader)) await f.kill();
    // Watch the survivor for three times the dead-server time: its configuration never shrinks.
    const until = performance.now() + 6_000;
    while (performance.now() < until) {
      const peers = await stalePeers(leader);
      if (peers) expect(peers.map((s) => s.ID).sort()).toEqual(before);
      await waitFor("a pause between looks", 500, () => false).catch(() => {});
    }
    // And on its disk: restarted alone, it still lists all three.
    await leader.restart();
    const after = await waitFor("the survivor's configuration after a restart", 10_000, () => stalePeers(leader));
    expect(after.map((s) => s.ID).sort()).toEqual(before);
    expect(leader.log()).not.toContain("autopilot removed a failed server");
  });
}, 60_000);

test("a server partitioned away and healed within the dead-server time is not removed", async () => {
  const { c, leader } = await start("autopilot-partition", "1s", "30s");
  await withLogs(c, async () => {
    const victim = c.followers(leader)[0]!;
    const before = (await stalePeers(leader))!.map((s) => s.ID).sort();
    victim.stop();
    try {
      await waitFor("the leader sees the stopped server as unhealthy", 10_000, async () => (await health(leader))?.Healthy === false);
      // Cut off for longer than the stabilization time: still a voter, still in the configuration.
      const until = performance.now() + 6_000;
      while (performance.now() < until) {
        const peers = await stalePeers(leader);
        if (peers) expect(peers.map((s) => s.ID).sort()).toEqual(before);
        await waitFor("a pause between looks", 500, () => false).catch(() => {});
      }
    } finally {
      victim.cont();
    }
    const h = await waitFor("three healthy voters again", 20_000, async () => {
      const x = await health(leader);
      return x?.Healthy && x.Servers.length === 3 && x.Servers.every((s) => s.Voter) ? x : undefined;
    });
    expect(h.Servers.map((s) => s.ID).sort()).toEqual(before);
    expect(leader.log()).not.toContain("autopilot removed a failed server");
  });
}, 60_000);

test("set-config goes through raft: every server answers what was set, after a leader change and a restart", async () => {
  const { c, leader } = await start("autopilot-config", "1s", "24h");
  await withLogs(c, async () => {
    const cli = async (s: ClusterServer, ...args: string[]) => {
      const p = Bun.spawn([c.binaryPath, ...args, "-address", s.url], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { out, err, code };
    };
    const follower = c.followers(leader)[0]!;
    const got = await cli(follower, "operator", "autopilot", "get-config");
    expect(got.code).toBe(0);
    expect(got.out).toMatch(/ServerStabilizationTime\s+1s/);
    const set = await cli(
      follower,
      "operator",
      "autopilot",
      "set-config",
      "-cleanup-dead-servers=false",
      "-max-trailing-logs",
      "500",
      "-server-stabilization-time",
      "3s",
    );
    expect(set.err).toBe("");
    expect(set.code).toBe(0);
    const want = { CleanupDeadServers: false, MaxTrailingLogs: 500, ServerStabilizationTime: "3s", FromFile: false };
    for (const s of c.servers) {
      const r = await waitFor(`${s.name} applies the configuration`, 10_000, async () => {
        const x = await s.get<Record<string, unknown>>("/v1/operator/autopilot/configuration?stale");
        return x.status === 200 && x.body.MaxTrailingLogs === 500 ? x.body : undefined;
      });
      expect(r).toMatchObject(want);
    }
    // A bad value is refused and changes nothing.
    const bad = await leader.put("/v1/operator/autopilot/configuration", { LastContactThreshold: "1ms" });
    expect(bad.status).toBe(400);
    const bogus = await cli(leader, "operator", "autopilot", "set-config", "-last-contact-threshold", "soon");
    expect(bogus.code).not.toBe(0);
    // A new leader, and every server restarted, still use it.
    const moved = await leader.put<{ ID: string }>(`/v1/operator/raft/transfer-leadership`);
    expect(moved.status).toBe(200);
    for (const s of c.servers) await s.restart();
    const next = await c.waitForLeader(20_000);
    const after = await next.get<Record<string, unknown>>("/v1/operator/autopilot/configuration");
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject(want);
  });
}, 60_000);
