// A voter that may not campaign (a server that stopped applying at an entry it does not understand):
// it keeps voting and acknowledging, never stands for election nor takes a transfer, and as leader
// hands leadership to the most up-to-date voter.
import { describe, expect, test } from "bun:test";
import { message } from "../../src/raft/message.ts";
import { TestNet, bytes } from "./network.ts";

function run(net: TestNet, ticks: number): void {
  for (let i = 0; i < ticks; i++) {
    net.tickAll();
    net.stabilize();
  }
}

describe("mayCampaign", () => {
  test("a follower that may not campaign never becomes a candidate, though it votes and the others elect", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.node("c").raw.setMayCampaign(false);
    net.isolate("a");
    run(net, 100);
    const c = net.node("c").raw.status();
    expect(c.state).toBe("follower");
    expect(net.node("b").raw.status().state).toBe("leader");
    expect(c.lead).toBe("b");
    // c's vote is what b won with (a was cut off): it still votes.
    expect(net.sent.some((m) => m.type === "voteResp" && m.from === "c" && m.to === "b" && !m.reject)).toBe(true);
    expect(net.sent.some((m) => (m.type === "vote" || m.type === "preVote") && m.from === "c")).toBe(false);
  });

  test("alone with it, the cluster has no leader: a server that may not campaign never stands", () => {
    const net = new TestNet(["a", "b"]);
    net.elect("a");
    net.node("b").raw.setMayCampaign(false);
    net.isolate("a");
    run(net, 200);
    expect(net.node("b").raw.status().state).toBe("follower");
  });

  test("it ignores a timeoutNow (a transfer to it does not happen)", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.node("b").raw.setMayCampaign(false);
    net.node("b").raw.step(message({ type: "timeoutNow", from: "a", to: "b", term: 1 }));
    net.stabilize();
    expect(net.node("b").raw.status().state).toBe("follower");
    expect(net.node("a").raw.status().state).toBe("leader");
  });

  test("a leader that may no longer campaign hands leadership to an up-to-date voter, and keeps acknowledging", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    net.node("a").raw.propose(bytes("x"));
    net.stabilize();
    net.node("a").raw.setMayCampaign(false);
    net.stabilize();
    run(net, 5);
    expect(net.node("a").raw.status().state).toBe("follower");
    const lead = net.leader();
    expect(lead?.id === "b" || lead?.id === "c").toBe(true);
    // With the third server cut off, the new leader still commits: a acknowledges.
    const other = lead?.id === "b" ? "c" : "b";
    net.isolate(other);
    const before = lead?.raw.status().commit ?? 0;
    lead?.raw.propose(bytes("y"));
    net.stabilize();
    expect(lead?.raw.status().commit).toBeGreaterThan(before);
    run(net, 100);
    expect(net.node("a").raw.status().state).toBe("follower");
  });

  test("allowed again, it campaigns as before", () => {
    const net = new TestNet(["a", "b"]);
    net.elect("a");
    net.node("b").raw.setMayCampaign(false);
    net.isolate("a");
    run(net, 50);
    net.node("b").raw.setMayCampaign(true);
    net.heal();
    run(net, 50);
    expect(net.leader()).toBeDefined();
  });
});
