// Autopilot's decision rules, one by one: promotion after the stabilization time, removal when a
// replacement votes, removal after the dead-server time, never below a quorum of the last healthy
// configuration, never while the leader cannot reach a quorum.
import { describe, expect, test } from "bun:test";
import {
  type AutopilotConfig,
  decide,
  durationString,
  failureTolerance,
  isHealthy,
  type ServerHealth,
} from "../../src/server/autopilot.ts";

const cfg: AutopilotConfig = {
  cleanupDeadServers: true,
  lastContactThresholdMs: 200,
  maxTrailingLogs: 250,
  serverStabilizationMs: 10_000,
  deadServerLastContactThresholdMs: 60_000,
};
const NOW = 1_000_000;

function srv(id: string, o: Partial<ServerHealth> = {}): ServerHealth {
  const healthy = o.healthy ?? true;
  return {
    id,
    voter: true,
    leader: false,
    lastContactMs: healthy ? 10 : 5_000,
    lag: 0,
    healthy,
    stableSince: healthy ? NOW - 100_000 : undefined,
    failedSince: healthy ? undefined : NOW - 1_000,
    ...o,
  };
}
const leader = (o: Partial<ServerHealth> = {}) => srv("L", { leader: true, lastContactMs: 0, ...o });
const dead = (id: string, failedFor = 1_000) => srv(id, { healthy: false, failedSince: NOW - failedFor });

describe("health", () => {
  test("Nomad's rule: last contact within the threshold and lag within max_trailing_logs", () => {
    expect(isHealthy(cfg, { leader: false, lastContactMs: 200, lag: 250 })).toBe(true);
    expect(isHealthy(cfg, { leader: false, lastContactMs: 201, lag: 0 })).toBe(false);
    expect(isHealthy(cfg, { leader: false, lastContactMs: 0, lag: 251 })).toBe(false);
    expect(isHealthy(cfg, { leader: true, lastContactMs: 0, lag: 0 })).toBe(true);
  });
  test("failure tolerance counts healthy voters beyond a quorum", () => {
    expect(failureTolerance([leader(), srv("a"), srv("b")])).toBe(1);
    expect(failureTolerance([leader(), srv("a"), dead("b")])).toBe(0);
    expect(failureTolerance([leader(), srv("a"), srv("b"), srv("c"), srv("d")])).toBe(2);
    expect(failureTolerance([leader(), srv("a"), srv("b"), srv("n", { voter: false })])).toBe(1);
  });
  test("durations print as Nomad's", () => {
    expect(durationString(12.4)).toBe("12ms");
    expect(durationString(0)).toBe("0s");
    expect(durationString(1500)).toBe("1.5s");
  });
});

describe("promotion", () => {
  test("a non-voter healthy for the stabilization time is promoted", () => {
    const d = decide(cfg, [leader(), srv("a"), srv("b"), srv("n", { voter: false, stableSince: NOW - 10_000 })], NOW, 3);
    expect(d.actions).toEqual([{ kind: "promote", id: "n", reason: expect.any(String) }]);
  });
  test("a non-voter healthy for less than the stabilization time waits", () => {
    const d = decide(cfg, [leader(), srv("a"), srv("b"), srv("n", { voter: false, stableSince: NOW - 9_999 })], NOW, 3);
    expect(d.actions).toEqual([]);
  });
  test("an unhealthy non-voter is not promoted", () => {
    const d = decide(cfg, [leader(), srv("a"), srv("b"), srv("n", { voter: false, healthy: false, lag: 1000 })], NOW, 3);
    expect(d.actions).toEqual([]);
  });
  test("with a failed voter, the ready replacement is promoted before the failed one is removed", () => {
    const d = decide(cfg, [leader(), srv("a"), dead("b"), srv("n", { voter: false })], NOW, 3);
    expect(d.actions.map((a) => [a.kind, a.id])).toEqual([["promote", "n"]]);
  });
});

describe("removal", () => {
  test("a failed voter is removed once a healthy replacement votes in its place", () => {
    const d = decide(cfg, [leader(), srv("a"), dead("b"), srv("n")], NOW, 3);
    expect(d.actions.map((a) => [a.kind, a.id])).toEqual([["remove", "b"]]);
    expect(d.actions[0]?.reason).toContain("replacement");
  });
  test("a failed voter with no replacement stays until the dead-server time", () => {
    expect(decide(cfg, [leader(), srv("a"), dead("b", 59_999)], NOW, 3).actions).toEqual([]);
    const d = decide(cfg, [leader(), srv("a"), dead("b", 60_000)], NOW, 3);
    expect(d.actions.map((a) => [a.kind, a.id])).toEqual([["remove", "b"]]);
    expect(d.actions[0]?.reason).toContain("dead_server_last_contact_threshold");
  });
  test("nothing is removed when cleanup_dead_servers is false", () => {
    const off = { ...cfg, cleanupDeadServers: false };
    expect(decide(off, [leader(), srv("a"), dead("b", 1e9), srv("n")], NOW, 3).actions).toEqual([]);
  });
  test("never below a quorum of the last healthy configuration", () => {
    // Five voters were healthy; two failed long ago: one may go (3 healthy >= quorum of 5).
    const servers = [leader(), srv("a"), srv("c"), dead("b", 1e9), dead("d", 1e9)];
    expect(decide(cfg, servers, NOW, 5).actions.map((a) => a.id)).toEqual(["b"]);
    // With 3 healthy of 5 and the last healthy configuration at 7 voters (quorum 4), nothing goes.
    const d = decide(cfg, servers, NOW, 7);
    expect(d.actions).toEqual([]);
    expect(d.held).toContain("below a quorum");
  });
  test("never while the leader cannot reach a quorum (a partition)", () => {
    // Two of three voters unheard for ages, even past the dead-server time, and a ready non-voter on the leader's side.
    const d = decide(cfg, [leader(), dead("a", 1e9), dead("b", 1e9), srv("n", { voter: false })], NOW, 3);
    expect(d.actions).toEqual([]);
    expect(d.held).toContain("quorum");
  });
  test("a server partitioned away and back within the dead-server time is never removed", () => {
    // Failed for 30 s, then healthy again: at no instant is a removal decided.
    for (let t = 0; t <= 30_000; t += 250) expect(decide(cfg, [leader(), srv("a"), dead("b", t)], NOW, 3).actions).toEqual([]);
    expect(decide(cfg, [leader(), srv("a"), srv("b")], NOW, 3).actions).toEqual([]);
  });
  test("two failed voters with a replacement: one removal by replacement is refused, time decides", () => {
    const servers = [leader(), srv("a"), srv("c"), dead("b"), dead("d"), srv("n")];
    expect(decide(cfg, servers, NOW, 5).actions).toEqual([]);
  });
});
