// On the leader, committed entries below a Ready's new entries are durable here (earlier batches) and
// on a quorum: the driver hands them to the applier while the batch is written. Any committed entry of
// the batch itself (a single server's own) applies only after the batch's fsync; with a term change in
// the Ready nothing applies before the write; and a follower applies only after its write (it
// acknowledges first).
import { expect, test } from "bun:test";
import { silentLogger } from "../../src/lib/logger.ts";
import type { RawNode, Ready } from "../../src/raft/raw_node.ts";
import { EntryType, type Entry, type HardState, type LogStorage } from "../../src/raft/storage.ts";
import { RaftDriver } from "../../src/server/raft_driver.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { waitFor } from "../support/wait.ts";

const entry = (index: number, term = 1): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index]) });

/** Hands out the one Ready the test sets. */
class FakeNode {
  next: Ready | undefined;
  hasReady(): boolean {
    return this.next !== undefined;
  }
  ready(): Ready {
    const rd = this.next as Ready;
    this.next = undefined;
    return rd;
  }
  advance(): void {}
  tick(): void {}
  readIndex(): void {}
  status(): { term: number } {
    return { term: 1 };
  }
}

/** A log whose appends wait until the test lets them finish. */
function blockingLog() {
  const appended: number[] = [];
  let finish: () => void = () => {};
  const log = {
    append: (es: Entry[]) =>
      new Promise<void>((resolve) => {
        finish = () => {
          for (const e of es) appended.push(e.index);
          resolve();
        };
      }),
    setHardState: async (_hs: HardState) => {},
  } as unknown as LogStorage;
  return { log, appended, finish: () => finish() };
}

function driver(node: FakeNode, log: LogStorage, applied: number[], start: number): RaftDriver {
  const hooks = {
    send: () => {},
    sendSnapshot: async () => true,
    apply: (e: Entry) => {
      applied.push(e.index);
      return undefined;
    },
    applyConfChange: () => {},
    installSnapshot: async () => {},
    afterApply: () => {},
    onLeaderChange: () => {},
    fatal: (e: unknown) => {
      throw e;
    },
  };
  return new RaftDriver(node as unknown as RawNode, log, hooks, 10, silentLogger(), new Metrics(), start);
}

/** A first Ready that persists term 1 and makes this server the leader (or a follower of another). */
async function prime(node: FakeNode, d: RaftDriver, leader = true): Promise<void> {
  node.next = {
    softState: { lead: leader ? "a" : "b", state: leader ? "leader" : "follower" },
    entries: [],
    committedEntries: [],
    messages: [],
    readStates: [],
    mustSync: true,
    hardState: { term: 1, vote: "", commit: 2 },
  };
  d.kick();
  await waitFor(() => (node.hasReady() ? undefined : true), 2_000, "the first Ready taken");
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

test("entries committed below the new batch apply while it is written; those in it after its fsync", async () => {
  const node = new FakeNode();
  const { log, appended, finish } = blockingLog();
  const applied: number[] = [];
  const d = driver(node, log, applied, 2);
  try {
    await prime(node, d);
    node.next = {
      entries: [entry(5), entry(6)],
      committedEntries: [entry(3), entry(4), entry(5)],
      messages: [],
      readStates: [],
      mustSync: true,
      hardState: { term: 1, vote: "", commit: 5 },
    };
    d.kick();
    await waitFor(() => (applied.length >= 2 ? true : undefined), 2_000, "entries 3 and 4 applied");
    // The batch is not written yet: 5 (committed, but in this batch) has not applied.
    await d.applierIdle();
    expect(appended).toEqual([]);
    expect(applied).toEqual([3, 4]);
    finish();
    await waitFor(() => (applied.length >= 3 ? true : undefined), 2_000, "entry 5 applied after the write");
    expect(appended).toEqual([5, 6]);
    expect(applied).toEqual([3, 4, 5]);
  } finally {
    d.stop();
  }
});

test("with a new term in the Ready, nothing applies before the batch is written", async () => {
  const node = new FakeNode();
  const { log, appended, finish } = blockingLog();
  const applied: number[] = [];
  const d = driver(node, log, applied, 2);
  try {
    await prime(node, d);
    node.next = {
      entries: [entry(5, 2)],
      committedEntries: [entry(3), entry(4)],
      messages: [],
      readStates: [],
      mustSync: true,
      hardState: { term: 2, vote: "", commit: 4 },
    };
    d.kick();
    // Let the driver run up to its wait for the write.
    for (let i = 0; i < 50; i++) await Promise.resolve();
    await d.applierIdle();
    expect(applied).toEqual([]);
    finish();
    await waitFor(() => (applied.length >= 2 ? true : undefined), 2_000, "entries 3 and 4 applied after the write");
    expect(appended).toEqual([5]);
    expect(applied).toEqual([3, 4]);
  } finally {
    d.stop();
  }
});

test("a follower applies the entries committed below its batch only after writing it", async () => {
  const node = new FakeNode();
  const { log, appended, finish } = blockingLog();
  const applied: number[] = [];
  const d = driver(node, log, applied, 2);
  try {
    await prime(node, d, false);
    node.next = {
      entries: [entry(5), entry(6)],
      committedEntries: [entry(3), entry(4)],
      messages: [],
      readStates: [],
      mustSync: true,
      hardState: { term: 1, vote: "", commit: 4 },
    };
    d.kick();
    for (let i = 0; i < 50; i++) await Promise.resolve();
    await d.applierIdle();
    expect(applied).toEqual([]);
    finish();
    await waitFor(() => (applied.length >= 2 ? true : undefined), 2_000, "entries 3 and 4 applied after the write");
    expect(appended).toEqual([5, 6]);
    expect(applied).toEqual([3, 4]);
  } finally {
    d.stop();
  }
});
