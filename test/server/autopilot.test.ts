// Autopilot's decision rules, one by one: promotion after the stabilization time, removal when a
// replacement votes, removal after the dead-server time, never below a quorum of the last healthy
// configuration, never while the leader cannot reach a quorum; the runtime configuration's entry
// and its place in snapshot headers.
import { describe, expect, test } from "bun:test";
import { encode } from "../../src/lib/codec.ts";
import { EntryType } from "../../src/raft/storage.ts";
import { readSnapshotHeader } from "../../src/snapshot/reader.ts";
import { fromWire, toWire } from "../../src/server/autopilot_config.ts";
import { Fsm } from "../../src/server/fsm.ts";
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
    const d = decide(cfg, [leader(), srv("a"), dead("b", 20_000), srv("n")], NOW, 3);
    expect(d.actions.map((a) => [a.kind, a.id])).toEqual([["remove", "b"]]);
    expect(d.actions[0]?.reason).toContain("replacement");
  });
  test("a voter that failed just now is not taken as replaced when a new server was promoted (the cluster grew)", () => {
    const d = decide(cfg, [leader(), srv("a"), dead("b", 500), srv("n")], NOW, 3);
    expect(d.actions).toEqual([]);
    expect(decide(cfg, [leader(), srv("a"), dead("b", 10_000), srv("n")], NOW, 3).actions.map((a) => a.id)).toEqual(["b"]);
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

describe("the runtime configuration", () => {
  const entry = (index: number, cmd: unknown) => ({ index, term: 1, type: EntryType.Normal, data: encode(cmd) });
  const config = { servers: [{ id: "a", address: "127.0.0.1:1", voter: true }] };
  async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
    yield b.slice();
  }
  async function snapshotOf(fsm: Fsm, index: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    const result = { size: 0, sha256: "", digest: "", records: 0 };
    for await (const c of fsm.snapshotChunks(fsm.state.view(), { index, term: 1, config }, `1-${index}`, result, {})) chunks.push(c);
    return Buffer.concat(chunks);
  }

  test("a PUT's fields over what is in effect; out-of-bounds values are refused by name", () => {
    const next = fromWire(cfg, { ServerStabilizationTime: "2s", CleanupDeadServers: false });
    expect(next).toEqual({ ...cfg, serverStabilizationMs: 2000, cleanupDeadServers: false });
    expect(toWire(next)).toMatchObject({
      ServerStabilizationTime: "2s",
      LastContactThreshold: "200ms",
      DeadServerLastContactThreshold: "60s",
    });
    expect(() => fromWire(cfg, { LastContactThreshold: "1ms" })).toThrow(/lastContactThresholdMs/);
    expect(() => fromWire(cfg, { LastContactThreshold: "soon" })).toThrow(/LastContactThreshold/);
    expect(() => fromWire(cfg, { MaxTrailingLogs: -1 })).toThrow(/maxTrailingLogs/);
  });

  test("the entry sets it at its index; a snapshot after it carries it, one before does not; loading brings it back", async () => {
    const fsm = new Fsm(
      () => "global",
      () => "cluster-1",
    );
    await fsm.apply(entry(1, { op: "cluster_version", version: "0.2.0" }));
    expect(fsm.autopilot.config).toBeUndefined();
    const set = { ...cfg, serverStabilizationMs: 3000 };
    await fsm.apply(entry(2, { op: "autopilot_config", config: set, feature: "autopilot-config", needs: "0.2.0" }));
    expect(fsm.autopilot.config).toEqual(set);
    expect((await readSnapshotHeader(once(await snapshotOf(fsm, 1)))).autopilot).toBeUndefined();
    const snap = await snapshotOf(fsm, 2);
    expect((await readSnapshotHeader(once(snap))).autopilot).toEqual(set);
    const other = new Fsm(
      () => "global",
      () => "cluster-1",
    );
    other.replaceStore(await other.loadFrom(once(snap), 2));
    expect(other.autopilot.config).toEqual(set);
    // A bad entry is refused the same on every server and changes nothing.
    await expect(fsm.apply(entry(3, { op: "autopilot_config", config: { ...set, maxTrailingLogs: -5 } }))).rejects.toThrow(/autopilot/);
    expect(fsm.autopilot.config).toEqual(set);
  });
});
