// Flow-control limits: in-flight bytes, committed bytes per Ready, unreachable
// followers, and claims from peers that cannot be true.
import { describe, expect, test } from "bun:test";
import { message } from "../../src/raft/message.ts";
import { TestNet } from "./network.ts";

describe("limits", () => {
  test("in-flight appends are bounded by bytes", () => {
    const net = new TestNet(["a", "b", "c"], { maxInflightBytes: 1000, maxSizePerMsg: 400, maxInflightMsgs: 100 });
    const a = net.elect("a");
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 5; i++) a.raw.propose(new Uint8Array(76));
      net.processReadies();
    }
    const all = net.drain();
    const bytes = all
      .filter((m) => m.type === "app" && m.to === "b")
      .reduce((s, m) => s + m.entries.reduce((t, e) => t + e.data.length + 24, 0), 0);
    // The window closes once it reaches the limit: at most one message past it.
    expect(bytes).toBeGreaterThanOrEqual(1000);
    expect(bytes).toBeLessThan(1000 + 400);
    net.queue = all;
    net.stabilize();
    expect(net.node("b").raw.status().commit).toBe(a.raw.status().lastIndex);
  });

  test("committed entries per Ready are bounded by bytes, the rest come in later batches", () => {
    const net = new TestNet(["a"], { maxCommittedBytesPerReady: 500 });
    const a = net.elect("a");
    for (let i = 0; i < 20; i++) a.raw.propose(new Uint8Array(100));
    const sizes: number[] = [];
    while (a.raw.hasReady()) {
      const rd = a.raw.ready();
      a.storage.appendSync(rd.entries);
      if (rd.hardState) a.storage.hardState = rd.hardState;
      sizes.push(rd.committedEntries.length);
      a.raw.advance(rd);
    }
    expect(sizes.every((n) => n <= 4)).toBe(true);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(20);
    expect(a.raw.status().applied).toBe(21);
  });

  test("reportUnreachable drops a replicating follower back to probing", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    expect(a.raw.status().progress?.b?.state).toBe("replicate");
    a.raw.reportUnreachable("b");
    expect(a.raw.status().progress?.b?.state).toBe("probe");
  });

  test("an acknowledgement beyond the leader's log is ignored and commits nothing", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.isolate("a");
    a.raw.propose(new Uint8Array(1));
    a.raw.step(message({ type: "appResp", from: "b", to: "a", term: 1, index: 1000 }));
    expect(a.raw.status().commit).toBe(1);
    expect(a.raw.status().progress?.b?.match).toBe(1);
  });
});
