// A server's record of snapshot operations: bounded to the last HISTORY_SIZE, newest first, each with its
// outcome (an error's code and message), and the restore under way with its phase and bytes so far.
import { expect, test } from "bun:test";
import { EdgeError } from "../../src/lib/errors.ts";
import { HISTORY_SIZE, historySchema, recorded, replyIndex, SnapshotHistory } from "../../src/server/snapshot_history.ts";

test("the ring keeps the last HISTORY_SIZE operations, newest first", () => {
  const h = new SnapshotHistory();
  for (let i = 1; i <= HISTORY_SIZE * 3; i++) {
    const op = h.start("save", "received");
    op.bytes(i * 10);
    op.ok(i);
  }
  const ops = h.ops();
  expect(ops.length).toBe(HISTORY_SIZE);
  expect(ops[0]?.Index).toBe(HISTORY_SIZE * 3);
  expect(ops.at(-1)?.Index).toBe(HISTORY_SIZE * 2 + 1);
  expect(ops[0]?.Bytes).toBe(HISTORY_SIZE * 30);
  // What a peer answers parses as what the asking server expects.
  expect(historySchema.safeParse({ Ops: ops, Scheduled: [] }).success).toBe(true);
});

test("a restore under way shows its phase and bytes; it ends once, as ok or as its error", async () => {
  let t = 1000;
  const h = new SnapshotHistory(() => t);
  const op = h.start("restore", "leader");
  op.bytes(4096);
  expect(h.inProgress()).toMatchObject({ Kind: "restore", Role: "leader", Phase: "received", Bytes: 4096 });
  op.phase("verified");
  op.phase("staged", 3);
  expect(h.inProgress()).toMatchObject({ Phase: "staged", StagedOn: 3 });
  // The apply reaches every restore under way here, whichever part started it.
  h.atPhase("committed");
  expect(h.inProgress()?.Phase).toBe("committed");
  t += 250;
  op.ok(42);
  op.failed(new Error("late")); // a second end is ignored
  expect(h.inProgress()).toBeUndefined();
  expect(h.ops()).toEqual([
    expect.objectContaining({ Kind: "restore", Role: "leader", Outcome: "ok", Index: 42, Bytes: 4096, DurationMs: 250 }),
  ]);

  const bad = h.start("restore", "received");
  await expect(
    recorded(bad, async () => Promise.reject(new EdgeError("BAD_SNAPSHOT", "invalid snapshot: bad magic")), replyIndex),
  ).rejects.toThrow("bad magic");
  expect(h.ops()[0]).toMatchObject({ Outcome: "error", Index: 0, Error: { Code: "BAD_SNAPSHOT", Message: "invalid snapshot: bad magic" } });

  const dry = h.start("restore", "leader", true);
  expect(await recorded(dry, async () => ({ Index: 7, Size: 10 }), replyIndex)).toEqual({ Index: 7, Size: 10 });
  expect(h.ops()[0]).toMatchObject({ Outcome: "ok", DryRun: true, Index: 7 });
});

test("saves are not shown as a restore in progress", () => {
  const h = new SnapshotHistory();
  const save = h.start("save", "scheduled");
  h.atPhase("swapped");
  expect(h.inProgress()).toBeUndefined();
  save.ok(3);
  expect(h.ops()[0]).toMatchObject({ Kind: "save", Role: "scheduled" });
});
