// `node operator snapshot history`'s output: one table of every server's operations newest first, the
// restore under way, the scheduled files with their age, and a server that did not answer with why.
import { expect, test } from "bun:test";
import type { SnapshotHistory } from "../../src/api/snapshot.ts";
import { formatSnapshotHistory } from "../../src/cli/snapshot_history.ts";

test("operations newest first with their server, the restore under way, the files and who did not answer", () => {
  const h: SnapshotHistory = {
    Servers: [
      {
        ID: "a",
        Node: "s1",
        Address: "10.0.0.1:4647",
        Ops: [
          {
            Kind: "restore",
            Role: "leader",
            DryRun: true,
            Start: "2026-12-07T18:00:00.000Z",
            DurationMs: 1500,
            Bytes: 2048,
            Outcome: "ok",
            Index: 7,
          },
        ],
        InProgress: { Kind: "restore", Role: "leader", Start: "2026-12-07T18:10:00.000Z", Phase: "staged", StagedOn: 2, Bytes: 1024 },
        Scheduled: [{ Name: "edgenode-20261207-170000-5.snap", Index: 5, Size: 100, Modified: "2026-12-07T17:00:00.000Z" }],
      },
      {
        ID: "b",
        Node: "s2",
        Address: "10.0.0.2:4647",
        Ops: [
          {
            Kind: "save",
            Role: "received",
            Start: "2026-12-07T18:05:00.000Z",
            DurationMs: 20,
            Bytes: 10,
            Outcome: "error",
            Index: 0,
            Error: { Code: "NO_LEADER", Message: "No cluster leader" },
          },
        ],
        Scheduled: [],
      },
      { ID: "c", Node: "s3", Address: "10.0.0.3:4647", Ops: [], Scheduled: [], Error: "connection refused" },
    ],
  };
  const out = formatSnapshotHistory(h, Date.parse("2026-12-07T18:00:00.000Z"));
  const lines = out.split("\n");
  expect(lines[0]).toMatch(/^Time\s+Server\s+Op\s+Role\s+Index\s+Size\s+Duration\s+Outcome$/);
  expect(lines[1]).toMatch(/^2026-12-07T18:05:00.000Z\s+s2\s+save\s+received\s+0\s+10 B\s+20ms\s+error: No cluster leader \(NO_LEADER\)$/);
  expect(lines[2]).toMatch(/^2026-12-07T18:00:00.000Z\s+s1\s+restore\s+leader\s+7\s+2.0 KiB\s+1.5s\s+ok \(dry run\)$/);
  expect(out).toContain("In progress on s1 (leader): restore staged on 2 servers, 1.0 KiB so far");
  expect(out).toMatch(/s1\s+edgenode-20261207-170000-5\.snap\s+5\s+100 B\s+1h/);
  expect(out).toContain("s3 (10.0.0.3:4647) did not answer: connection refused");
});
