// The driver writes commit-only hard states in the background, coalesced: one write in flight, then the
// newest. A commit handed over just as that writer finishes must still be written. The writer's "I am
// running" mark used to be cleared in a continuation of its promise, a few microtasks after its last
// look for more work; a commit handed over in between was taken as queued and never written. Each
// offset below hands the next commit over that many microtasks after the previous write resolved.
import { expect, test } from "bun:test";
import { silentLogger } from "../../src/lib/logger.ts";
import type { RawNode, Ready } from "../../src/raft/raw_node.ts";
import type { HardState, LogStorage } from "../../src/raft/storage.ts";
import { RaftDriver } from "../../src/server/raft_driver.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { waitFor } from "../support/wait.ts";

/** Hands out one hard state per Ready, as the test sets it. */
class FakeNode {
  hardState: HardState | undefined;
  private inReady = false;
  hasReady(): boolean {
    return !this.inReady && this.hardState !== undefined;
  }
  ready(): Ready {
    this.inReady = true;
    const rd: Ready = { entries: [], committedEntries: [], messages: [], readStates: [], mustSync: false, hardState: this.hardState };
    this.hardState = undefined;
    return rd;
  }
  advance(): void {
    this.inReady = false;
  }
  tick(): void {}
  readIndex(): void {}
  status(): { term: number } {
    return { term: 1 };
  }
}

const hooks = {
  send: () => {},
  sendSnapshot: async () => true,
  apply: async () => undefined,
  applyConfChange: () => {},
  installSnapshot: async () => {},
  afterApply: () => {},
  onLeaderChange: () => {},
  fatal: (e: unknown) => {
    throw e;
  },
};

async function microtasks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

test("a commit handed over just as the background commit writer finishes is written", async () => {
  for (let offset = 0; offset <= 12; offset++) {
    const node = new FakeNode();
    const written: number[] = [];
    let d!: RaftDriver;
    const log = {
      setHardState: async (hs: HardState) => {
        written.push(hs.commit);
        if (hs.commit === 1) {
          // The next commit arrives `offset` microtasks after this write resolves.
          void Promise.resolve().then(async () => {
            await microtasks(offset);
            node.hardState = { term: 1, vote: "", commit: 2 };
            d.kick();
          });
        }
      },
    } as unknown as LogStorage;
    d = new RaftDriver(node as unknown as RawNode, log, hooks, 10, silentLogger(), new Metrics(), 0);
    try {
      // The first hard state sets term and vote (written inline); the next only moves the commit.
      node.hardState = { term: 1, vote: "", commit: 0 };
      d.kick();
      await waitFor(() => written.includes(0) || undefined, 2_000, "the first hard state written");
      node.hardState = { term: 1, vote: "", commit: 1 };
      d.kick();
      await waitFor(
        () => written.includes(2) || undefined,
        2_000,
        `commit 2, handed over ${offset} microtasks after commit 1's write, written`,
      );
      expect(written).toEqual([0, 1, 2]);
    } finally {
      d.stop();
    }
  }
});
