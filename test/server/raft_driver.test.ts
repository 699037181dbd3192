// The raft driver against a fake raft core, so each test decides what the core answers.
//
// Read barriers whose raft message is lost. A ReadIndex request (follower -> leader) and its answer
// are fire-and-forget raft messages: a reset connection or a leader that steps down drops them. The
// driver used to wait for that answer forever, and since it asks one context at a time, every later
// linearizable read on that server waited behind it (the nemesis found it under flaky links: every
// consistent read in the cluster hung while writes went on).
import { expect, test } from "bun:test";
import { silentLogger } from "../../src/lib/logger.ts";
import { NotLeaderError } from "../../src/raft/errors.ts";
import type { RawNode, Ready, ReadState, SoftState } from "../../src/raft/raw_node.ts";
import type { LogStorage, SnapshotMeta } from "../../src/raft/storage.ts";
import { RaftDriver } from "../../src/server/raft_driver.ts";
import { READ_RETRY_MS } from "../../src/server/read_barrier.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { waitFor } from "../support/wait.ts";

/** Records every read index asked; answers only what the test pushes. */
class FakeNode {
  asked: string[] = [];
  answers: ReadState[] = [];
  soft: SoftState | undefined;
  snapshot: SnapshotMeta | undefined;
  leaderKnown = true;
  private inReady = false;

  readIndex(ctx: string): void {
    if (!this.leaderKnown) throw new NotLeaderError("");
    this.asked.push(ctx);
  }
  hasReady(): boolean {
    return !this.inReady && (this.answers.length > 0 || this.soft !== undefined || this.snapshot !== undefined);
  }
  ready(): Ready {
    this.inReady = true;
    const rd: Ready = { entries: [], committedEntries: [], messages: [], readStates: this.answers, mustSync: false };
    if (this.soft) rd.softState = this.soft;
    if (this.snapshot) rd.snapshot = this.snapshot;
    this.answers = [];
    this.soft = undefined;
    this.snapshot = undefined;
    return rd;
  }
  advance(): void {
    this.inReady = false;
  }
  tick(): void {}
  status(): { term: number } {
    return { term: 1 };
  }
}

function driverOn(node: FakeNode): RaftDriver {
  const hooks = {
    send: () => {},
    sendSnapshot: async () => true,
    apply: () => undefined,
    applyConfChange: () => {},
    installSnapshot: async () => {},
    afterApply: () => {},
    onLeaderChange: () => {},
    fatal: (e: unknown) => {
      throw e;
    },
  };
  const log = { installSnapshot: async () => {} } as unknown as LogStorage;
  return new RaftDriver(node as unknown as RawNode, log, hooks, 10, silentLogger(), new Metrics(), 0);
}

function answer(node: FakeNode, d: RaftDriver, ctx: string, index = 0): void {
  node.answers.push({ ctx, index });
  d.kick();
}

test("a read whose request or answer was lost is asked again and completes, and the reads after it are served", async () => {
  const node = new FakeNode();
  const d = driverOn(node);
  d.start();
  try {
    const first = d.readBarrier();
    expect(node.asked).toEqual(["r1"]); // r1 is lost: never answered
    const second = d.readBarrier(); // waits behind r1
    await waitFor(() => node.asked.length >= 2 || undefined, READ_RETRY_MS * 10, "the lost read index to be asked again");
    const again = node.asked.at(-1) as string;
    expect(again).not.toBe("r1");
    answer(node, d, again);
    expect(await first).toBe(0);
    expect(await second).toBe(0);
    // The late answer to the abandoned context is ignored, and the next read is asked at once.
    answer(node, d, "r1");
    const third = d.readBarrier();
    await waitFor(() => node.asked.length >= 3 || undefined, 2_000, "the next read to be asked");
    answer(node, d, node.asked.at(-1) as string);
    expect(await third).toBe(0);
  } finally {
    d.stop();
  }
});

test("a follower asks the new leader at once when the leader changes, without waiting for the retry", async () => {
  const node = new FakeNode();
  const d = driverOn(node); // not started: no ticks, so only the leader change can ask again
  try {
    const read = d.readBarrier();
    expect(node.asked).toEqual(["r1"]);
    node.soft = { lead: "old", state: "follower" };
    d.kick();
    await waitFor(() => node.asked.length >= 2 || undefined, 2_000, "the read to go to the first leader seen");
    node.soft = { lead: "new", state: "follower" };
    d.kick();
    await waitFor(() => node.asked.length >= 3 || undefined, 2_000, "the read to be asked of the new leader");
    answer(node, d, node.asked.at(-1) as string);
    expect(await read).toBe(0);
  } finally {
    d.stop();
  }
});

test("a read refused for want of a leader does not block the reads after it", async () => {
  const node = new FakeNode();
  const d = driverOn(node);
  try {
    node.leaderKnown = false;
    await expect(d.readBarrier()).rejects.toBeInstanceOf(NotLeaderError);
    node.leaderKnown = true;
    const read = d.readBarrier();
    expect(node.asked.length).toBe(1);
    answer(node, d, node.asked[0] as string);
    expect(await read).toBe(0);
  } finally {
    d.stop();
  }
});

test("a read waiting for an index is served when a snapshot from the leader covers it, with no entry after it", async () => {
  const node = new FakeNode();
  const d = driverOn(node);
  try {
    let served = false;
    const waiting = d.waitApplied(5).then(() => {
      served = true;
    });
    node.snapshot = { index: 7, term: 2, config: { servers: [] } };
    d.kick();
    await waitFor(() => served || undefined, 2_000, "the waiter to be woken by the snapshot");
    await waiting;
    expect(d.applied).toBe(7);
  } finally {
    d.stop();
  }
});

test("waitApplied with a timeout rejects after it and forgets its waiter; without one it waits", async () => {
  const node = new FakeNode();
  const d = driverOn(node);
  try {
    await expect(d.waitApplied(3, 50, "gave up on 3")).rejects.toThrow("gave up on 3");
    let served = false;
    const waiting = d.waitApplied(3).then(() => {
      served = true;
    });
    d.markApplied(2);
    await new Promise((r) => setImmediate(r)); // a turn of the event loop: nothing may resolve it yet
    expect(served).toBe(false);
    d.markApplied(3);
    await waiting;
    expect(served).toBe(true);
    // The timed-out waiter was removed: only the one still waiting was ever held.
    expect((d as unknown as { appliedWaiters: unknown[] }).appliedWaiters.length).toBe(0);
  } finally {
    d.stop();
  }
});

test("stopping the driver rejects whatever still waits for an index to apply", async () => {
  const node = new FakeNode();
  const d = driverOn(node);
  const waiting = d.waitApplied(9);
  d.stop();
  await expect(waiting).rejects.toThrow("shutting down");
  await expect(d.waitApplied(10)).rejects.toThrow("shutting down");
});
