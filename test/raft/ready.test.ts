// The Ready/advance contract when the driver keeps stepping messages while it
// persists a batch (async persistence): nothing is lost or marked stable wrongly.
import { expect, test } from "bun:test";
import { message } from "../../src/raft/message.ts";
import { RawNode } from "../../src/raft/raw_node.ts";
import { EntryType } from "../../src/raft/storage.ts";
import type { Entry } from "../../src/raft/storage.ts";
import { MemStorage } from "../sim/mem_storage.ts";
import { bytes, configOf, seeded } from "./network.ts";

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: bytes(`${index}@${term}`) });

test("entries replaced while a batch is being persisted stay unstable and come in the next Ready", () => {
  const storage = new MemStorage(configOf(["a", "b", "c"]));
  const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1) });
  raw.step(message({ type: "app", from: "b", to: "a", term: 1, index: 0, logTerm: 0, entries: [ent(1, 1), ent(2, 1), ent(3, 1)] }));
  const rd1 = raw.ready();
  expect(rd1.entries.map((e) => e.index)).toEqual([1, 2, 3]);
  // While rd1 is being written, a new leader overwrites 2..3.
  raw.step(message({ type: "app", from: "c", to: "a", term: 2, index: 1, logTerm: 1, entries: [ent(2, 2), ent(3, 2)] }));
  storage.appendSync(rd1.entries);
  if (rd1.hardState) storage.hardState = rd1.hardState;
  raw.advance(rd1);
  const rd2 = raw.ready();
  expect(rd2.entries.map((e) => `${e.index}@${e.term}`)).toEqual(["2@2", "3@2"]);
  storage.appendSync(rd2.entries);
  raw.advance(rd2);
  expect([1, 2, 3].map((i) => storage.term(i))).toEqual([1, 2, 2]);
  // The acknowledgement for the replacement went out only in rd2, after its persistence.
  expect(rd1.messages.every((m) => m.to === "b")).toBe(true);
  expect(rd2.messages.some((m) => m.to === "c" && m.type === "appResp" && m.index === 3)).toBe(true);
});

test("committed entries are handed out once, even when commit advances between ready() and advance()", () => {
  const storage = new MemStorage(configOf(["a", "b", "c"]));
  const raw = new RawNode({ id: "a", storage, electionTick: 10, heartbeatTick: 1, random: seeded(1) });
  raw.step(
    message({ type: "app", from: "b", to: "a", term: 1, index: 0, logTerm: 0, entries: [ent(1, 1), ent(2, 1), ent(3, 1)], commit: 1 }),
  );
  const rd1 = raw.ready();
  raw.step(message({ type: "heartbeat", from: "b", to: "a", term: 1, commit: 3 }));
  storage.appendSync(rd1.entries);
  raw.advance(rd1);
  const rd2 = raw.ready();
  raw.advance(rd2);
  const applied = [...rd1.committedEntries, ...rd2.committedEntries].map((e) => e.index);
  expect(applied).toEqual([1, 2, 3]);
});
