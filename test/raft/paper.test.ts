// One test per rule of the Raft paper's Figure 2 (plus §5.4.2), driving single
// RawNodes with hand-made messages or a small in-memory cluster.
import { describe, expect, test } from "bun:test";
import { message } from "../../src/raft/message.ts";
import type { Message } from "../../src/raft/message.ts";
import { RawNode } from "../../src/raft/raw_node.ts";
import { EntryType } from "../../src/raft/storage.ts";
import type { Entry } from "../../src/raft/storage.ts";
import { MemStorage } from "../sim/mem_storage.ts";
import { TestNet, bytes, configOf, seeded } from "./network.ts";

const paper = { preVote: false, checkQuorum: false };

function single(id = "a", ids = ["a", "b", "c"], setup?: (s: MemStorage) => void) {
  const storage = new MemStorage(configOf(ids));
  setup?.(storage);
  const raw = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, random: seeded(42), ...paper });
  return { raw, storage };
}

/** Drain one Ready, persisting it; returns its messages. */
function flush(n: { raw: RawNode; storage: MemStorage }): Message[] {
  const out: Message[] = [];
  while (n.raw.hasReady()) {
    const rd = n.raw.ready();
    if (rd.snapshot) n.storage.installSnapshotSync(rd.snapshot);
    n.storage.appendSync(rd.entries);
    if (rd.hardState) n.storage.hardState = { ...rd.hardState };
    out.push(...rd.messages);
    n.raw.advance(rd);
  }
  return out;
}

const ent = (index: number, term: number, d = ""): Entry => ({ index, term, type: EntryType.Normal, data: bytes(d) });

function withLog(terms: number[], hsTerm: number) {
  return (s: MemStorage) => {
    s.appendSync(terms.map((t, k) => ent(k + 1, t, `e${k + 1}`)));
    s.hardState = { term: hsTerm, vote: "", commit: 0 };
  };
}

describe("Figure 2: rules for all servers", () => {
  test("commitIndex > lastApplied: committed entries are handed out for applying, in order, once", () => {
    const net = new TestNet(["a", "b", "c"], paper);
    net.elect("a");
    for (const k of [1, 2, 3]) net.node("a").raw.propose(bytes(`x${k}`));
    net.stabilize();
    for (const n of net.nodes.values()) {
      expect(n.applied.map((e) => e.index)).toEqual([1, 2, 3, 4]);
      expect(n.raw.status().applied).toBe(4);
    }
  });

  for (const state of ["follower", "candidate", "leader"] as const) {
    test(`term T > currentTerm in a message: a ${state} sets currentTerm = T and becomes follower`, () => {
      const n = single();
      if (state === "candidate") n.raw.campaign();
      if (state === "leader") {
        n.raw.campaign();
        n.raw.step(message({ type: "voteResp", from: "b", to: "a", term: 1 }));
      }
      expect(n.raw.status().state).toBe(state);
      n.raw.step(message({ type: "app", from: "c", to: "a", term: 5 }));
      expect(n.raw.status().term).toBe(5);
      expect(n.raw.status().state).toBe("follower");
      expect(n.raw.status().lead).toBe("c");
    });
  }
});

describe("Figure 2: followers", () => {
  test("respond to RPCs from candidates and leaders", () => {
    const n = single();
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 1 }));
    n.raw.step(message({ type: "app", from: "c", to: "a", term: 2 }));
    const msgs = flush(n);
    expect(msgs.map((m) => m.type)).toEqual(["voteResp", "appResp"]);
  });

  test("election timeout elapses without hearing from a leader: convert to candidate", () => {
    const n = single();
    for (let i = 0; i < 20; i++) n.raw.tick();
    expect(n.raw.status().state).toBe("candidate");
    expect(n.raw.status().term).toBe(1);
  });

  test("election timeout is randomized in [electionTick, 2*electionTick)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const storage = new MemStorage(configOf(["a", "b", "c"]));
      const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(seed), ...paper });
      let ticks = 0;
      while (raw.status().state === "follower") {
        raw.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  test("hearing from the leader resets the election timer", () => {
    const n = single();
    for (let i = 0; i < 100; i++) {
      n.raw.tick();
      if (i % 5 === 0) n.raw.step(message({ type: "heartbeat", from: "b", to: "a", term: 1 }));
    }
    expect(n.raw.status().state).toBe("follower");
  });
});

describe("Figure 2: candidates", () => {
  test("on conversion to candidate: increment term, vote for self, send RequestVote to all others", () => {
    const n = single("a", ["a", "b", "c"], withLog([1, 1], 1));
    n.raw.campaign();
    const st = n.raw.status();
    expect(st.state).toBe("candidate");
    expect(st.term).toBe(2);
    expect(st.vote).toBe("a");
    const msgs = flush(n);
    expect(msgs.map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
      ["vote", "b", 2, 2, 1],
      ["vote", "c", 2, 2, 1],
    ]);
    expect(n.storage.hardState).toEqual({ term: 2, vote: "a", commit: 0 });
  });

  test("votes from a majority: become leader", () => {
    const n = single("a", ["a", "b", "c", "d", "e"]);
    n.raw.campaign();
    n.raw.step(message({ type: "voteResp", from: "b", to: "a", term: 1 }));
    expect(n.raw.status().state).toBe("candidate");
    n.raw.step(message({ type: "voteResp", from: "c", to: "a", term: 1, reject: true }));
    n.raw.step(message({ type: "voteResp", from: "d", to: "a", term: 1 }));
    expect(n.raw.status().state).toBe("leader");
  });

  test("a majority of rejections: give up and become follower", () => {
    const n = single();
    n.raw.campaign();
    n.raw.step(message({ type: "voteResp", from: "b", to: "a", term: 1, reject: true }));
    n.raw.step(message({ type: "voteResp", from: "c", to: "a", term: 1, reject: true }));
    expect(n.raw.status().state).toBe("follower");
  });

  test("AppendEntries from the new leader of the same term: convert to follower", () => {
    const n = single();
    n.raw.campaign();
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 1 }));
    expect(n.raw.status().state).toBe("follower");
    expect(n.raw.status().lead).toBe("b");
  });

  test("election timeout elapses: start a new election", () => {
    const n = single();
    n.raw.campaign();
    for (let i = 0; i < 20; i++) n.raw.tick();
    expect(n.raw.status().state).toBe("candidate");
    expect(n.raw.status().term).toBe(2);
  });
});

describe("Figure 2: leaders", () => {
  test("upon election: an empty entry, AppendEntries to each server, heartbeats when idle", () => {
    const n = single();
    n.raw.campaign();
    flush(n);
    n.raw.step(message({ type: "voteResp", from: "b", to: "a", term: 1 }));
    const msgs = flush(n);
    expect(msgs.filter((m) => m.type === "app").map((m) => [m.to, m.entries.length, m.entries[0]?.data.length])).toEqual([
      ["b", 1, 0],
      ["c", 1, 0],
    ]);
    n.raw.tick();
    expect(
      flush(n)
        .filter((m) => m.type === "heartbeat")
        .map((m) => m.to),
    ).toEqual(["b", "c"]);
  });

  test("command from a client: appended to the local log, replicated, applied once committed", () => {
    const net = new TestNet(["a", "b", "c"], paper);
    net.elect("a");
    const { index, term } = net.node("a").raw.propose(bytes("cmd"));
    expect(net.node("a").raw.status().lastIndex).toBe(index);
    net.stabilize();
    for (const n of net.nodes.values()) expect(n.applied.at(-1)).toMatchObject({ index, term });
  });

  test("follower's log behind nextIndex: send entries from nextIndex; on inconsistency back off and retry", () => {
    // b has a conflicting tail from an old term; the leader must find the match point and overwrite it.
    const net = new TestNet(["a", "b", "c"], paper);
    net.node("b").storage.appendSync([ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)]);
    net.node("b").storage.hardState = { term: 1, vote: "", commit: 0 };
    for (const id of ["a", "c"]) {
      net.node(id).storage.appendSync([ent(1, 1), ent(2, 2)]);
      net.node(id).storage.hardState = { term: 2, vote: "", commit: 0 };
    }
    const net2 = new TestNet([], paper);
    for (const [k, n] of net.nodes) net2.add(k, n.storage, k.charCodeAt(0));
    net2.elect("a");
    net2.node("a").raw.propose(bytes("z"));
    net2.stabilize();
    const terms = (id: string) => {
      const s = net2.node(id).storage;
      return Array.from({ length: s.lastIndex() }, (_, k) => s.term(k + 1));
    };
    expect(terms("b")).toEqual(terms("a"));
    expect(terms("a")).toEqual([1, 2, 3, 3]);
  });

  test("commit N only when a majority has matchIndex >= N and log[N].term == currentTerm (§5.4.2)", () => {
    // a is leader of term 3 with an uncommitted entry of term 2 at index 2.
    const n = single("a", ["a", "b", "c"], withLog([1, 2], 2));
    n.raw.campaign();
    n.raw.step(message({ type: "voteResp", from: "b", to: "a", term: 3 }));
    expect(n.raw.status().state).toBe("leader");
    flush(n);
    // b acknowledges index 2 (term 2) only: the old-term entry must not commit by counting.
    n.raw.step(message({ type: "appResp", from: "b", to: "a", term: 3, index: 2 }));
    expect(n.raw.status().commit).toBe(0);
    // Once b acknowledges the term-3 no-op at 3, everything up to 3 commits.
    n.raw.step(message({ type: "appResp", from: "b", to: "a", term: 3, index: 3 }));
    expect(n.raw.status().commit).toBe(3);
  });
});

describe("Figure 2: RequestVote receiver", () => {
  test("1. reply false if term < currentTerm", () => {
    const n = single("a", ["a", "b", "c"], withLog([], 5));
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 4, index: 10, logTerm: 4 }));
    const [m] = flush(n);
    expect(m).toBeUndefined(); // a stale candidate gets no answer (it learns the term from others)
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 6, index: 0, logTerm: 0 }));
    expect(flush(n)[0]).toMatchObject({ type: "voteResp", reject: false, term: 6 });
  });

  test("2. grant if votedFor is null or candidateId and the candidate's log is at least as up-to-date", () => {
    const n = single("a", ["a", "b", "c"], withLog([1, 2], 2));
    // Less up-to-date: lower last term, or same last term but shorter.
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 3, index: 5, logTerm: 1 }));
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 3, index: 1, logTerm: 2 }));
    expect(flush(n).map((m) => m.reject)).toEqual([true, true]);
    // Up-to-date: granted, and a second candidate in the same term is refused; the same one again is granted.
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 3, index: 2, logTerm: 2 }));
    n.raw.step(message({ type: "vote", from: "c", to: "a", term: 3, index: 9, logTerm: 3 }));
    n.raw.step(message({ type: "vote", from: "b", to: "a", term: 3, index: 2, logTerm: 2 }));
    expect(flush(n).map((m) => [m.to, m.reject])).toEqual([
      ["b", false],
      ["c", true],
      ["b", false],
    ]);
    expect(n.storage.hardState.vote).toBe("b");
  });
});

describe("Figure 2: AppendEntries receiver", () => {
  test("1. reply false if term < currentTerm", () => {
    const n = single("a", ["a", "b", "c"], withLog([1], 3));
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 2, index: 1, logTerm: 1, entries: [ent(2, 2)] }));
    const msgs = flush(n);
    expect(n.raw.status().lastIndex).toBe(1);
    expect(msgs[0]).toMatchObject({ type: "appResp", term: 3 }); // tells the stale leader the newer term
  });

  test("2. reply false if the log has no entry at prevLogIndex with term prevLogTerm", () => {
    const n = single("a", ["a", "b", "c"], withLog([1, 1, 2], 2));
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 3, index: 3, logTerm: 3, entries: [ent(4, 3)] }));
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 3, index: 5, logTerm: 3, entries: [ent(6, 3)] }));
    const msgs = flush(n);
    expect(msgs.map((m) => [m.reject, m.index, m.rejectHint, m.logTerm])).toEqual([
      [true, 3, 3, 2], // hint: our entry at 3 has term 2 <= 3
      [true, 5, 3, 2], // hint: our log ends at 3
    ]);
    expect(n.raw.status().lastIndex).toBe(3);
  });

  test("3. an existing entry conflicting with a new one is deleted with all that follow", () => {
    const n = single("a", ["a", "b", "c"], withLog([1, 1, 1, 1], 1));
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 2, index: 1, logTerm: 1, entries: [ent(2, 1), ent(3, 2)] }));
    flush(n);
    expect([1, 2, 3].map((i) => n.storage.term(i))).toEqual([1, 1, 2]);
    expect(n.storage.lastIndex()).toBe(3);
  });

  test("4. append any new entries not already in the log (a duplicate append changes nothing)", () => {
    const n = single("a", ["a", "b", "c"], withLog([1, 1], 1));
    const m = message({ type: "app", from: "b", to: "a", term: 1, index: 0, logTerm: 0, entries: [ent(1, 1), ent(2, 1), ent(3, 1)] });
    n.raw.step(m);
    flush(n);
    n.raw.step(message({ ...m, entries: [ent(1, 1)] })); // a delayed shorter copy must not truncate
    flush(n);
    expect(n.storage.lastIndex()).toBe(3);
  });

  test("5. leaderCommit > commitIndex: commitIndex = min(leaderCommit, index of last new entry)", () => {
    const n = single("a", ["a", "b", "c"], withLog([1, 1, 1, 1], 1));
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 1, index: 1, logTerm: 1, entries: [ent(2, 1)], commit: 4 }));
    expect(n.raw.status().commit).toBe(2);
    n.raw.step(message({ type: "app", from: "b", to: "a", term: 1, index: 3, logTerm: 1, entries: [], commit: 3 }));
    expect(n.raw.status().commit).toBe(3);
  });
});
