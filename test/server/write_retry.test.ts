// Which refusals of a write may run it again on the next leader: the core's own errors, raised by a
// real raft core in the states that cause them, not built by hand.
import { describe, expect, test } from "bun:test";
import { EdgeError } from "../../src/lib/errors.ts";
import { retryOnNextLeader } from "../../src/server/write_retry.ts";
import { TestNet, bytes } from "../raft/network.ts";

/** What `propose` threw (fails the test when it accepted the entry). */
function refusal(propose: () => unknown): unknown {
  try {
    propose();
  } catch (e) {
    return e;
  }
  throw new Error("the proposal was accepted");
}

describe("retryOnNextLeader", () => {
  test("a follower's refusal (not the leader) is retried", () => {
    const net = new TestNet(["a", "b", "c"]);
    net.elect("a");
    expect(retryOnNextLeader(refusal(() => net.node("b").raw.propose(bytes("x"))))).toBe(true);
  });

  test("a leader's refusal during a leadership transfer is retried", () => {
    const net = new TestNet(["a", "b", "c"]);
    const a = net.elect("a");
    net.isolate("c");
    a.raw.propose(bytes("x"));
    a.raw.transferLeadership("c");
    expect(retryOnNextLeader(refusal(() => a.raw.propose(bytes("y"))))).toBe(true);
  });

  test("an entry larger than a message is not retried: it would be refused by any leader", () => {
    const net = new TestNet(["a", "b", "c"], { maxSizePerMsg: 1024 });
    const a = net.elect("a");
    expect(retryOnNextLeader(refusal(() => a.raw.propose(new Uint8Array(4096))))).toBe(false);
  });

  test("back-pressure on uncommitted bytes is not retried elsewhere", () => {
    const net = new TestNet(["a", "b", "c"], { maxUncommittedBytes: 1000 });
    const a = net.elect("a");
    net.isolate("a");
    let e: unknown;
    for (let i = 0; i < 100 && e === undefined; i++) {
      try {
        a.raw.propose(new Uint8Array(100));
      } catch (err) {
        e = err;
      }
    }
    expect(e).toBeDefined();
    expect(retryOnNextLeader(e)).toBe(false);
  });

  test("errors after the entry was appended (outcome unknown or lost term) are never retried", () => {
    expect(retryOnNextLeader(new EdgeError("TIMEOUT", "timed out waiting for index 7 to commit; the outcome is unknown"))).toBe(false);
    expect(retryOnNextLeader(new EdgeError("UNAVAILABLE", "leadership lost before the write committed; it was not applied"))).toBe(false);
    // The same code as the core's refusal, from the wire: without the core's type it proves nothing.
    expect(retryOnNextLeader({ code: "NO_LEADER", message: "not the leader" })).toBe(false);
  });
});
