// Beyond Figure 2: PreVote, CheckQuorum and the leader lease, ReadIndex, flow
// control and limits, snapshots, membership changes, leadership transfer, restart.
import { describe, expect, test } from "bun:test";
import { ConfChangeError, NotLeaderError, ProposalDroppedError } from "../../src/raft/errors.ts";
import { decodeConfChange } from "../../src/raft/membership.ts";
import { message } from "../../src/raft/message.ts";
import { RawNode } from "../../src/raft/raw_node.ts";
import { EntryType } from "../../src/raft/storage.ts";
import { MemStorage } from "../sim/mem_storage.ts";
import { TestNet, bytes, configOf, seeded } from "./network.ts";

describe("PreVote", () => {
  test("a partitioned server does not raise its term, and rejoins without deposing the leader", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 100; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.node("c").raw.status().term).toBe(1);
    expect(net.node("c").raw.status().state).toBe("precandidate");
    net.heal();
    for (let i = 0; i < 5; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.node("a").raw.status().state).toBe("leader");
    expect(net.node("a").raw.status().term).toBe(1);
    expect(net.node("c").raw.status().lead).toBe("a");
  });

  test("a PreVote is granted without changing the voter's term or vote", () => {
    const storage = new MemStorage(configOf(["a", "b", "c"]));
    const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1) });
    raw.step(message({ type: "preVote", from: "b", to: "a", term: 1 }));
    const rd = raw.ready();
    expect(rd.messages[0]).toMatchObject({ type: "preVoteResp", reject: false, term: 1 });
    expect(raw.status().term).toBe(0);
    expect(raw.status().vote).toBe("");
  });
});

describe("CheckQuorum and the leader lease", () => {
  test("a leader that hears from no quorum for an election timeout steps down", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.isolate("a");
    for (let i = 0; i < 25; i++) {
      net.node("a").raw.tick();
      net.stabilize();
    }
    expect(net.node("a").raw.status().state).toBe("follower");
  });

  test("votes are ignored while a leader was heard within the election timeout", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    const b = net.node("b");
    b.raw.step(message({ type: "vote", from: "c", to: "b", term: 5, index: 100, logTerm: 5 }));
    expect(b.raw.status().term).toBe(1);
    expect(net.drain().filter((m) => m.from === "b")).toEqual([]);
  });

  test("a transfer's vote bypasses the lease", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.node("b").raw.step(message({ type: "vote", from: "c", to: "b", term: 2, index: 1, logTerm: 1, context: "transfer" }));
    expect(net.node("b").raw.status().term).toBe(2);
  });
});

describe("ReadIndex", () => {
  test("the leader confirms with one quorum round shared by concurrent reads", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    a.raw.readIndex("r1");
    a.raw.readIndex("r2");
    const msgs = net.drain();
    const hbs = msgs.filter((m) => m.type === "heartbeat");
    expect(hbs.length).toBe(2); // one round: one heartbeat per follower for both reads
    expect(new Set(hbs.map((m) => m.context)).size).toBe(1);
    expect(a.readStates).toEqual([]);
    net.queue = msgs;
    net.stabilize();
    expect(a.readStates).toEqual([
      { ctx: "r1", index: 1 },
      { ctx: "r2", index: 1 },
    ]);
  });

  test("a round whose acknowledgements were lost completes on the next periodic heartbeat", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    a.raw.readIndex("r1");
    // The round's heartbeats arrive, but every answer is lost (a reset connection, say).
    net.filter = (m) => m.type !== "heartbeatResp";
    net.stabilize();
    expect(a.readStates).toEqual([]);
    net.heal();
    // The periodic heartbeat carries the pending round, so the answers to it confirm the read.
    a.raw.tick();
    net.stabilize();
    expect(a.readStates).toEqual([{ ctx: "r1", index: 1 }]);
  });

  test("an isolated leader cannot serve a read", () => {
    const net = new TestNet(["a", "b", "c"], { checkQuorum: false });
    const a = net.elect("a");
    net.isolate("a");
    a.raw.readIndex("stale?");
    net.stabilize();
    expect(a.readStates).toEqual([]);
  });

  test("a follower obtains the read index from the leader", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    a.raw.propose(bytes("x"));
    net.stabilize();
    net.node("c").raw.readIndex("f1");
    net.stabilize();
    expect(net.node("c").readStates).toEqual([{ ctx: "f1", index: 2 }]);
  });

  test("a new leader waits until an entry of its term commits", () => {
    const storage = new MemStorage(configOf(["a", "b", "c"]));
    const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1), preVote: false });
    raw.campaign();
    raw.step(message({ type: "voteResp", from: "b", to: "a", term: 1 }));
    raw.readIndex("early");
    const rd = raw.ready();
    expect(rd.messages.some((m) => m.type === "heartbeat")).toBe(false);
    storage.appendSync(rd.entries);
    raw.advance(rd);
    raw.step(message({ type: "appResp", from: "b", to: "a", term: 1, index: 1 }));
    const rd2 = raw.ready();
    const hb = rd2.messages.filter((m) => m.type === "heartbeat" && m.context !== "");
    expect(hb.length).toBe(2);
  });

  test("a follower without a known leader refuses with NotLeaderError", () => {
    const storage = new MemStorage(configOf(["a", "b", "c"]));
    const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1) });
    expect(() => raw.readIndex("x")).toThrow(NotLeaderError);
  });
});

describe("proposals, flow control and limits", () => {
  test("a follower refuses a proposal with NotLeaderError naming the leader", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    try {
      net.node("b").raw.propose(bytes("x"));
      throw new Error("expected NotLeaderError");
    } catch (e) {
      expect(e).toBeInstanceOf(NotLeaderError);
      expect((e as NotLeaderError).leader).toBe("a");
      expect((e as NotLeaderError).code).toBe("NO_LEADER");
    }
  });

  test("uncommitted bytes are bounded: ProposalDroppedError", () => {
    const net = new TestNet(["a", "b", "c"], { maxUncommittedBytes: 1000 });
    const a = net.elect("a");
    net.isolate("a");
    let dropped = 0;
    for (let i = 0; i < 100; i++) {
      try {
        a.raw.propose(new Uint8Array(100));
      } catch (e) {
        expect(e).toBeInstanceOf(ProposalDroppedError);
        dropped++;
      }
    }
    expect(dropped).toBeGreaterThan(85);
    // Once the backlog commits, proposals are accepted again.
    net.heal();
    net.stabilize();
    expect(() => a.raw.propose(new Uint8Array(100))).not.toThrow();
  });

  test("proposals between two Ready batches go out in one append per follower (batching)", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    for (let i = 0; i < 64; i++) a.raw.propose(bytes(`p${i}`));
    const apps = net.drain().filter((m) => m.type === "app");
    expect(apps.length).toBe(2);
    expect(apps.every((m) => m.entries.length === 64)).toBe(true);
  });

  test("in-flight appends are bounded by count and messages by size", () => {
    const net = new TestNet(["a", "b", "c"], { maxInflightMsgs: 3, maxSizePerMsg: 300 });
    const a = net.elect("a");
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) a.raw.propose(new Uint8Array(50));
      net.processReadies();
    }
    const all = net.drain();
    const apps = all.filter((m) => m.type === "app" && m.to === "b");
    expect(apps.length).toBe(3);
    net.queue = all;
    for (const m of apps) expect(m.entries.reduce((s, e) => s + e.data.length + 24, 0)).toBeLessThanOrEqual(300);
    net.stabilize();
    expect(net.node("b").raw.status().commit).toBe(a.raw.status().lastIndex);
  });

  test("malformed and misaddressed messages are dropped, not thrown on", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    const garbage: unknown[] = [
      null,
      { type: "app" },
      { ...message({ type: "app", from: "b", to: "a", term: 1 }), term: -1 },
      { ...message({ type: "app", from: "b", to: "a", term: 1 }), index: 1.5 },
      { ...message({ type: "nope" as "app", from: "b", to: "a", term: 1 }) },
      message({ type: "app", from: "b", to: "a", term: 1, index: 0, entries: [{ index: 5, term: 1, type: 0, data: new Uint8Array() }] }),
      message({ type: "appResp", from: "zz", to: "a", term: 1, index: 1e9 }),
      message({ type: "heartbeat", from: "b", to: "q", term: 9 }),
    ];
    for (const g of garbage) a.raw.step(g as never);
    expect(a.raw.status().state).toBe("leader");
    expect(a.raw.status().term).toBe(1);
  });
});

describe("snapshots", () => {
  test("a follower behind the compaction point gets a snapshot request; success resumes replication", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 30; i++) a.raw.propose(bytes(`x${i}`));
    net.stabilize();
    const applied = a.raw.status().applied;
    a.storage.snapshot = { index: applied, term: 1, config: configOf(["a", "b", "c"]) };
    a.storage.compactSync(applied - 5);
    net.heal();
    // The leader hears from c (heartbeat), finds c behind the compaction point and asks the driver to
    // stream its snapshot (TestNet streams it at once and reports success).
    for (let i = 0; i < 3; i++) {
      a.raw.tick();
      net.stabilize();
    }
    const snaps = net.sent.filter((m) => m.type === "snap");
    expect(snaps.map((m) => [m.to, m.snapshot?.index])).toEqual([["c", applied]]);
    const c = net.node("c");
    expect(c.storage.snapshot.index).toBe(applied);
    expect(c.applied.map((e) => e.index)).toEqual([1]); // the rest came from the snapshot, not from entries
    a.raw.propose(bytes("after"));
    net.stabilize();
    expect(c.raw.status().commit).toBe(a.raw.status().commit);
    expect(c.applied.at(-1)?.data).toEqual(bytes("after"));
    expect(a.raw.status().progress?.c?.state).toBe("replicate");
  });

  test("the receiver returns a stepped snapshot in Ready.snapshot and applies from after it", () => {
    const storage = new MemStorage(configOf(["a", "b", "c"]));
    const raw = new RawNode({ id: "c", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1) });
    const meta = { index: 50, term: 2, config: configOf(["a", "b", "c"]) };
    raw.step(message({ type: "snap", from: "a", to: "c", term: 2, snapshot: meta }));
    const rd = raw.ready();
    expect(rd.snapshot).toEqual(meta);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.messages[0]).toMatchObject({ type: "appResp", index: 50, reject: false });
    storage.installSnapshotSync(rd.snapshot!);
    raw.advance(rd);
    expect(raw.status()).toMatchObject({ commit: 50, applied: 50, lastIndex: 50 });
    raw.step(
      message({
        type: "app",
        from: "a",
        to: "c",
        term: 2,
        index: 50,
        logTerm: 2,
        entries: [{ index: 51, term: 2, type: 0, data: bytes("n") }],
        commit: 51,
      }),
    );
    const rd2 = raw.ready();
    expect(rd2.committedEntries.map((e) => e.index)).toEqual([51]);
  });

  test("a failed snapshot send returns the follower to probing, and it is retried", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 10; i++) a.raw.propose(bytes(`x${i}`));
    net.stabilize();
    const applied = a.raw.status().applied;
    a.storage.snapshot = { index: applied, term: 1, config: configOf(["a", "b", "c"]) };
    a.storage.compactSync(applied);
    // Every stream fails (TestNet reports reportSnapshot(c, false)): c goes back to probing and the
    // leader asks again after the next heartbeat answer.
    net.filter = (m) => m.type !== "snap";
    for (let i = 0; i < 4; i++) {
      a.raw.tick();
      net.stabilize();
    }
    expect(net.sent.filter((m) => m.type === "snap").length).toBeGreaterThanOrEqual(2);
    expect(a.raw.status().progress?.c?.state).not.toBe("replicate");
    expect(net.node("c").raw.status().commit).toBeLessThan(applied);
    net.heal();
    for (let i = 0; i < 3; i++) {
      a.raw.tick();
      net.stabilize();
    }
    expect(net.node("c").raw.status().commit).toBe(a.raw.status().commit);
    expect(a.raw.status().progress?.c?.state).toBe("replicate");
  });

  test("forceSnapshot sends the current snapshot to an up-to-date follower", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    a.storage.snapshot = { index: 1, term: 1, config: configOf(["a", "b", "c"]) };
    a.raw.forceSnapshot("b");
    const snaps = net.drain().filter((m) => m.type === "snap");
    expect(snaps.map((m) => m.to)).toEqual(["b"]);
  });
});

describe("membership", () => {
  test("addVoter: the new server joins as a non-voter, catches up, then is promoted", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    for (let i = 0; i < 5; i++) a.raw.propose(bytes(`x${i}`));
    net.stabilize();
    net.add("d", new MemStorage({ servers: [] }), 99);
    a.raw.proposeConfChange({ type: "addVoter", id: "d", address: "d:1" });
    net.stabilize();
    for (let i = 0; i < 5; i++) {
      a.raw.tick();
      net.stabilize();
    }
    const cfg = a.raw.status().config.servers.find((s) => s.id === "d");
    expect(cfg?.voter).toBe(true);
    const d = net.node("d");
    expect(d.raw.status().config.servers.map((s) => `${s.id}:${s.voter}`)).toEqual(["a:true", "b:true", "c:true", "d:true"]);
    // The change went through a non-voter stage first.
    const stages = d.applied
      .filter((e) => e.data.length > 0)
      .flatMap((e) => {
        try {
          return [decodeConfChange(e.data).config.servers.find((s) => s.id === "d")?.voter];
        } catch {
          return [];
        }
      });
    expect(stages).toEqual([false, true]);
  });

  test("one change at a time: a second change is refused until the first is applied", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.stabilize();
    a.raw.proposeConfChange({ type: "addNonvoter", id: "d", address: "d:1" });
    expect(() => a.raw.proposeConfChange({ type: "remove", id: "c" })).toThrow(ConfChangeError);
    net.stabilize();
    expect(() => a.raw.proposeConfChange({ type: "remove", id: "c" })).not.toThrow();
  });

  test("invalid changes are refused", () => {
    const net = new TestNet(["a"]);
    const a = net.elect("a");
    net.stabilize();
    expect(() => a.raw.proposeConfChange({ type: "promote", id: "zz" })).toThrow(ConfChangeError);
    expect(() => a.raw.proposeConfChange({ type: "remove", id: "a" })).toThrow(ConfChangeError); // no voter left
    expect(() => a.raw.proposeConfChange({ type: "addVoter", id: "a", address: "a:1" })).toThrow(ConfChangeError);
  });

  test("a removed leader steps down once the removal is applied; the rest elect a new leader", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.stabilize();
    a.raw.proposeConfChange({ type: "remove", id: "a" });
    net.stabilize();
    expect(a.raw.status().state).toBe("follower");
    for (let i = 0; i < 50 && !["b", "c"].some((id) => net.node(id).raw.status().state === "leader"); i++) {
      net.tickAll();
      net.stabilize();
    }
    const leader = ["b", "c"].find((id) => net.node(id).raw.status().state === "leader");
    expect(leader).toBeDefined();
    expect(
      net
        .node(leader!)
        .raw.status()
        .config.servers.map((s) => s.id),
    ).toEqual(["b", "c"]);
  });

  test("after a restart the configuration is rebuilt from storage and the applied log", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    a.raw.proposeConfChange({ type: "addNonvoter", id: "d", address: "d:1" });
    net.stabilize();
    const applied = a.raw.status().applied;
    const raw = new RawNode({ id: "a", storage: a.storage, electionTick: 10, heartbeatTick: 1, random: seeded(3), applied });
    expect(raw.status().config.servers.map((s) => s.id)).toEqual(["a", "b", "c", "d"]);
    // Without `applied`, the change is re-delivered in committedEntries and takes effect on advance.
    const raw2 = new RawNode({ id: "a", storage: a.storage, electionTick: 10, heartbeatTick: 1, random: seeded(3) });
    expect(raw2.status().config.servers.length).toBe(3);
    const rd = raw2.ready();
    expect(rd.committedEntries.some((e) => e.type === EntryType.ConfChange)).toBe(true);
    raw2.advance(rd);
    expect(raw2.status().config.servers.length).toBe(4);
  });
});

describe("leadership transfer", () => {
  test("the transferee catches up, gets timeoutNow and wins; proposals are refused meanwhile", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.isolate("c");
    for (let i = 0; i < 5; i++) a.raw.propose(bytes(`x${i}`));
    net.stabilize();
    a.raw.transferLeadership("c");
    expect(a.raw.status().leadTransferee).toBe("c");
    expect(() => a.raw.propose(bytes("y"))).toThrow(ProposalDroppedError);
    net.heal();
    net.stabilize();
    expect(net.node("c").raw.status().state).toBe("leader");
    expect(a.raw.status().lead).toBe("c");
  });

  test("a transfer that cannot finish is abandoned after an election timeout", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.isolate("c");
    a.raw.transferLeadership("c");
    for (let i = 0; i < 12; i++) {
      a.raw.tick();
      net.stabilize();
    }
    expect(a.raw.status().leadTransferee).toBeUndefined();
    expect(() => a.raw.propose(bytes("y"))).not.toThrow();
  });

  test("a follower forwards the request to the leader", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.node("b").raw.transferLeadership("b");
    net.stabilize();
    expect(net.node("b").raw.status().state).toBe("leader");
  });
});

describe("Ready contract", () => {
  test("ready() twice without advance() is an error; hard state and entries arrive before messages are due", () => {
    const storage = new MemStorage(configOf(["a", "b", "c"]));
    const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1), preVote: false });
    raw.campaign();
    const rd = raw.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: "a", commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(() => raw.ready()).toThrow();
    raw.advance(rd);
    expect(raw.hasReady()).toBe(false);
  });
});
