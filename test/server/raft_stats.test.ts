// The raft stats table: every server of the configuration with what it reported about itself, its lag
// behind the leader's commit, and a row with the reason for a server that did not answer in time, that
// answered for another server, or that holds another cluster id.
import { expect, test } from "bun:test";
import { EdgeError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Members } from "../../src/server/members.ts";
import { type OwnRaftStats, raftStats } from "../../src/server/raft_stats.ts";

const own = (id: string, o: Partial<OwnRaftStats> = {}): OwnRaftStats => ({
  ID: id,
  State: "follower",
  Term: 3,
  LastIndex: 50,
  CommitIndex: 50,
  AppliedIndex: 50,
  ClusterID: "cluster-1",
  Leader: "b",
  ...o,
});

function members(ids: string[]): Members {
  const m = new Members({ log: silentLogger(), nodeId: () => "a", setPeers: () => {} });
  m.set({ servers: ids.map((id) => ({ id, address: `${id}:4647`, voter: true })) });
  for (const id of ids) m.names.set(id, `n-${id}`);
  return m;
}

test("each server's indexes and its lag behind the leader's commit; the reason for each one without an answer", async () => {
  const started = performance.now();
  const stats = await raftStats(
    {
      members: members(["a", "b", "c", "d", "e", "f"]),
      nodeId: () => "a",
      own: () => own("a", { AppliedIndex: 40 }),
      call: async (address) => {
        const id = address.slice(0, 1);
        if (id === "b") return own("b", { State: "leader", CommitIndex: 60, AppliedIndex: 58 });
        if (id === "c") return own("c", { AppliedIndex: 61 });
        if (id === "d") return new Promise(() => {});
        if (id === "e") return own("x");
        if (id === "f") throw new EdgeError("UNAVAILABLE", "connection refused");
        throw new Error(`unexpected ${address}`);
      },
    },
    200,
  );
  expect(performance.now() - started).toBeLessThan(2_000);
  expect(stats.ClusterID).toBe("cluster-1");
  expect(stats.Leader).toBe("b");
  const rows = Object.fromEntries(stats.Servers.map((s) => [s.ID, s]));
  expect(stats.Servers.map((s) => s.ID)).toEqual(["a", "b", "c", "d", "e", "f"]);
  expect(rows.a).toMatchObject({ Node: "n-a", Address: "a:4647", State: "follower", CommitIndex: 50, AppliedIndex: 40, Lag: 20 });
  expect(rows.b).toMatchObject({ State: "leader", CommitIndex: 60, AppliedIndex: 58, Lag: 2 });
  // Answered a little after the leader: ahead of the commit the leader reported, not a negative lag.
  expect(rows.c?.Lag).toBe(0);
  expect(rows.d?.Error).toBe("Status.RaftStats: no answer within 200 ms");
  expect(rows.d?.AppliedIndex).toBeUndefined();
  expect(rows.d?.Lag).toBeUndefined();
  expect(rows.e?.Error).toBe("the server at e:4647 is x, not e");
  expect(rows.f?.Error).toBe("connection refused");
});

test("no lag without the leader's answer; a server of another cluster, or of a release without the call, is named", async () => {
  const stats = await raftStats({
    members: members(["a", "b", "c", "d"]),
    nodeId: () => "a",
    own: () => own("a"),
    call: async (address) => {
      if (address === "b:4647") throw new EdgeError("TIMEOUT", "no answer");
      if (address === "d:4647") throw new EdgeError("NOT_FOUND", "unknown rpc method Status.RaftStats");
      return own("c", { ClusterID: "other" });
    },
  });
  for (const s of stats.Servers) expect(s.Lag).toBeUndefined();
  expect(stats.Servers[2]?.Error).toBe("holds cluster id other, not cluster-1");
  expect(stats.Servers[2]?.AppliedIndex).toBe(50);
  expect(stats.Servers[3]?.Error).toBe("its release does not report raft stats (Status.RaftStats unknown there)");
});
