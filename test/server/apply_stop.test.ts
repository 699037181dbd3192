// An entry this binary does not understand stops the applier before it; a command it knows and refuses
// stays a refusal. The driver applies nothing from the stop on (applied stays below it, later entries
// are not applied), refuses reads waiting on it, and keeps its Ready loop: messages still go out.
import { describe, expect, test } from "bun:test";
import { encode } from "../../src/lib/codec.ts";
import { hasCode } from "../../src/lib/errors.ts";
import { createLogger, silentLogger } from "../../src/lib/logger.ts";
import type { Message } from "../../src/raft/message.ts";
import type { RawNode, Ready } from "../../src/raft/raw_node.ts";
import { EntryType, type Entry, type LogStorage } from "../../src/raft/storage.ts";
import { ApplyStop, notUnderstood, notUnderstoodError, reportOf } from "../../src/server/apply_stop.ts";
import { Fsm } from "../../src/server/fsm.ts";
import { Metrics } from "../../src/server/metrics.ts";
import { RaftDriver } from "../../src/server/raft_driver.ts";
import { RaftSnapshots, type RaftSnapshotsHost } from "../../src/server/raft_snapshots.ts";
import { waitFor } from "../support/wait.ts";

const entry = (index: number, cmd: unknown): Entry => ({ index, term: 1, type: EntryType.Normal, data: encode(cmd) });
const put = (path: string) => ({ op: "var.put", path, items: { k: "v" }, now: 1 });
const gated = { op: "test_gated", value: "x", feature: "test-gated", needs: "0.2.0" };
const none = () => false;

describe("what is not understood", () => {
  test("an op this binary does not know, a feature it is not built with, a newer release: not understood", () => {
    expect(notUnderstood(7, { op: "var.frobnicate", path: "a" }, none)).toMatchObject({ Index: 7, Op: "var.frobnicate" });
    const g = notUnderstood(8, gated, none);
    expect(g).toMatchObject({ Index: 8, Op: "test_gated", Feature: "test-gated", Needs: "0.2.0" });
    expect(g?.Message).toContain("index 8");
    // A known op marked as needing a later release (its meaning changed there).
    expect(notUnderstood(9, { ...put("a"), needs: "9.0.0" }, none)).toMatchObject({ Needs: "9.0.0" });
  });

  test("a known command, valid or not, and a registered server op are understood (a refusal stays a refusal)", () => {
    expect(notUnderstood(1, put("a"), none)).toBeUndefined();
    expect(notUnderstood(1, { op: "var.put", path: 7 }, none)).toBeUndefined();
    expect(notUnderstood(1, { op: "test_gated", value: "x" }, (op) => op === "test_gated")).toBeUndefined();
    expect(notUnderstood(1, { op: "var.put", path: "a", needs: "0.1.0" }, none)).toBeUndefined();
    expect(notUnderstood(1, "garbage", none)).toBeUndefined();
    expect(notUnderstood(1, { no: "op" }, none)).toBeUndefined();
  });

  test("the state machine throws NOT_APPLIED for it, and refuses an invalid known command as before", async () => {
    const fsm = new Fsm(
      () => "global",
      () => "c",
    );
    await fsm.apply(entry(1, put("a")));
    const e = await fsm.apply(entry(2, gated)).catch((x: unknown) => x);
    expect(hasCode(e, "NOT_APPLIED")).toBe(true);
    expect(reportOf(e)?.Index).toBe(2);
    const bad = await fsm.apply(entry(3, { op: "var.put", path: 7, now: 1 })).catch((x: unknown) => x);
    expect(hasCode(bad, "BAD_REQUEST")).toBe(true);
    expect(fsm.state.getVar("a")).toBeDefined();
  });
});

/** Hands out the committed entries and messages the test pushes. */
class FakeNode {
  committed: Entry[] = [];
  messages: Message[] = [];
  private inReady = false;
  hasReady(): boolean {
    return !this.inReady && (this.committed.length > 0 || this.messages.length > 0);
  }
  ready(): Ready {
    this.inReady = true;
    const rd: Ready = { entries: [], committedEntries: this.committed, messages: this.messages, readStates: [], mustSync: false };
    this.committed = [];
    this.messages = [];
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

describe("the applier's stop", () => {
  test("applied stays below the entry, nothing after it applies, waiters are refused, messages still go out", async () => {
    const fsm = new Fsm(
      () => "global",
      () => "c",
    );
    const node = new FakeNode();
    const sent: number[] = [];
    const applied: number[] = [];
    const stops: number[] = [];
    const stop = new ApplyStop({ log: silentLogger(), stats: new Metrics(), forbidCampaign: () => stops.push(1), behind: () => 2 });
    const hooks = {
      send: (m: Message) => sent.push(m.index),
      sendSnapshot: async () => true,
      apply: (e: Entry) => {
        applied.push(e.index);
        return fsm.apply(e).catch((err: unknown) => {
          if (reportOf(err)) stop.stop(e.index, err);
          throw err;
        });
      },
      applyConfChange: () => {},
      installSnapshot: async () => {},
      afterApply: () => {},
      onLeaderChange: () => {},
      fatal: (e: unknown) => {
        throw e;
      },
    };
    const d = new RaftDriver(node as unknown as RawNode, {} as LogStorage, hooks, 10, silentLogger(), new Metrics(), 0);
    try {
      const waiting = d.waitApplied(3).catch((e: unknown) => e);
      node.committed = [entry(1, put("a")), entry(2, gated), entry(3, put("b"))];
      d.kick();
      expect(hasCode(await waiting, "NOT_APPLIED")).toBe(true);
      expect(d.applied).toBe(1);
      expect(applied).toEqual([1, 2]);
      expect(stop.stopped?.Index).toBe(2);
      expect(stops).toEqual([1]);
      expect(stop.refusal("a read")?.message).toContain("2 entries behind");
      // Later entries are not applied; the loop still sends.
      node.committed = [entry(4, put("c"))];
      node.messages = [{ type: "heartbeat", from: "a", to: "b", term: 1, index: 99 } as Message];
      d.kick();
      await waitFor(() => sent.includes(99) || undefined, 2_000, "the next Ready's message");
      expect(applied).toEqual([1, 2]);
      expect(d.applied).toBe(1);
      expect(fsm.state.getVar("b")).toBeUndefined();
      expect(hasCode(await d.waitApplied(2).catch((e: unknown) => e), "NOT_APPLIED")).toBe(true);
      await d.waitApplied(1);
    } finally {
      d.stop();
      stop.close();
    }
  });
});

describe("raft snapshots while stopped", () => {
  test("a snapshot from the leader is refused before anything is stored; while applying it is received as before", async () => {
    const created: number[] = [];
    let stopped: string | undefined = "entry 5 (op test_gated) is not understood";
    const host = {
      cfg: { server: { snapshot_threshold: 100 } },
      applyStopped: () => stopped,
      snapshots: {
        create: (meta: { index: number }) => {
          created.push(meta.index);
          throw new Error("stop here: the store was reached");
        },
      },
    };
    const snaps = new RaftSnapshots(host as unknown as RaftSnapshotsHost);
    const m = { type: "snap", from: "a", to: "b", term: 2, snapshot: { index: 9, term: 2, config: { servers: [] } } } as unknown as Message;
    async function* none(): AsyncGenerator<Uint8Array> {}
    const refused = await snaps.receive(m, none()).catch((e: unknown) => e);
    expect(hasCode(refused, "NOT_APPLIED")).toBe(true);
    expect(String((refused as Error).message)).toContain("snapshot 9 from a refused: entry 5");
    expect(created).toEqual([]);
    stopped = undefined;
    expect(String(await snaps.receive(m, none()).catch((e: unknown) => e))).toContain("the store was reached");
    expect(created).toEqual([9]);
  });
});

describe("the stop's reporting", () => {
  test("logged once when it happens, then once per interval; campaigning forbidden once; the metric names the index", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "INFO", write: (l: string) => lines.push(l) });
    const stats = new Metrics();
    let forbidden = 0;
    const stop = new ApplyStop({ log, stats, forbidCampaign: () => forbidden++, behind: () => 4, logEveryMs: 40 });
    try {
      expect(stats.prometheus()).toMatch(/edgenode_apply_stopped_index(\{\})? 0\b/);
      const report = notUnderstood(11, gated, none);
      if (!report) throw new Error("the gated entry is not understood here");
      stop.stop(11, notUnderstoodError(report));
      stop.stop(11, notUnderstoodError(report));
      const logged = () => lines.filter((l) => l.includes("apply stopped at an entry")).length;
      expect(logged()).toBe(1);
      expect(lines[0]).toContain("index=11");
      expect(forbidden).toBe(1);
      expect(stats.prometheus()).toMatch(/edgenode_apply_stopped_index(\{\})? 11\b/);
      await waitFor(() => logged() >= 3 || undefined, 2_000, "the stop to be logged again each interval");
    } finally {
      stop.close();
    }
  });
});
