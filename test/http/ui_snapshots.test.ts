// The Snapshots page through the Hono app with a fake backend: the operations of every server merged newest
// first with their test hooks, the restore in progress (the leader's), the scheduled files, a server that
// did not answer in red, escaping, accessibility, and the token form alone when the token may not read it.
import { expect, test } from "bun:test";
import { permissionDenied } from "../../src/lib/errors.ts";
import type { Backend, CallResult } from "../../src/server/backend.ts";
import { app, callOnlyBackend } from "./ui_backend.ts";
import type { SnapshotHistoryReply } from "../../src/server/snapshot_history.ts";

const HISTORY: SnapshotHistoryReply = {
  Servers: [
    {
      ID: "id-a",
      Node: "alpha",
      Address: "127.0.0.1:4700",
      Ops: [
        { Kind: "restore", Role: "leader", Start: "2026-12-07T18:00:02.000Z", DurationMs: 1500, Bytes: 3 << 20, Outcome: "ok", Index: 90 },
        {
          Kind: "restore",
          Role: "leader",
          Start: "2026-12-07T17:00:00.000Z",
          DurationMs: 5,
          Bytes: 12,
          Outcome: "error",
          Index: 0,
          Error: { Code: "BAD_SNAPSHOT", Message: "invalid snapshot: <bad> magic" },
        },
      ],
      InProgress: { Kind: "restore", Role: "leader", Start: "2026-12-07T18:10:00.000Z", Phase: "staged", StagedOn: 3, Bytes: 4096 },
      Scheduled: [{ Name: "edgenode-20261207-180000-85.snap", Index: 85, Size: 2048, Modified: "2026-12-07T18:00:00.000Z" }],
    },
    {
      ID: "id-b",
      Node: "bravo",
      Address: "127.0.0.1:4701",
      Ops: [{ Kind: "save", Role: "received", Start: "2026-12-07T18:05:00.000Z", DurationMs: 20, Bytes: 100, Outcome: "ok", Index: 95 }],
      InProgress: { Kind: "restore", Role: "received", Start: "2026-12-07T18:10:00.000Z", Phase: "received", Bytes: 8192 },
      Scheduled: [],
    },
    { ID: "id-c", Node: "charlie", Address: "127.0.0.1:4702", Ops: [], Scheduled: [], Error: "connection refused" },
  ],
};

function fake(history: SnapshotHistoryReply, allowed?: string): Backend {
  return callOnlyBackend(async (method, _args, q): Promise<CallResult> => {
    if (allowed !== undefined && q.token !== allowed) throw permissionDenied();
    if (method !== "Operator.SnapshotHistory") throw new Error(`unexpected ${method}`);
    return { reply: history };
  });
}

test("the page merges every server's operations newest first, shows the leader's restore in progress and the files on disk", async () => {
  const res = await app(fake(HISTORY)).request("/ui/snapshots");
  expect(res.status).toBe(200);
  const html = await res.text();
  const rows = [...html.matchAll(/data-op="(\w+)" data-outcome="(\w+)" data-server="(\w+)"/g)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
  expect(rows).toEqual(["save ok bravo", "restore ok alpha", "restore error alpha"]);
  // The leader's progress, not the relay's: it knows the furthest phase.
  expect(html).toMatch(/id="restore-progress" data-phase="staged" data-server="alpha"/);
  expect(html).toContain("staged on 3 servers");
  expect(html).toContain("4.0 KiB so far");
  expect(html).toContain('data-scheduled="edgenode-20261207-180000-85.snap"');
  expect(html).toContain("3.0 MiB");
  expect(html).toContain("invalid snapshot: &lt;bad&gt; magic (BAD_SNAPSHOT)");
  expect(html).toContain('class="banner bad"');
  expect(html).toContain("No answer from charlie (connection refused)");
  expect(html).toContain('<a href="/ui/snapshots">Snapshots</a>');
  // Accessible as the other pages: a language, one h1, scoped table headers; nothing fetched from outside.
  expect(html).toMatch(/<html lang="en">/);
  expect(html.match(/<h1>/g)?.length).toBe(1);
  for (const m of html.matchAll(/<th( [^>]*)?>/g)) expect(m[1] ?? "").toContain('scope="col"');
  // The one script tag is the pages' own /ui/app.js (the JavaScript-on path); nothing else.
  expect(html.replace(/<script src="\/ui\/app\.js\?v=[0-9a-f]{16}" defer=""><\/script>/, "")).not.toMatch(/<script|https?:\/\//);
});

test("with nothing under way there is no progress element; with no operations the page says so", async () => {
  const quiet: SnapshotHistoryReply = { Servers: [{ ID: "id-a", Node: "alpha", Address: "127.0.0.1:4700", Ops: [], Scheduled: [] }] };
  const html = await (await app(fake(quiet)).request("/ui/snapshots")).text();
  expect(html).not.toContain('id="restore-progress"');
  expect(html).not.toContain("data-op=");
  expect(html).toContain("None recorded");
  expect(html).toContain('class="banner ok"');
});

test("a token that may not read operator data gets the token form and no server name", async () => {
  const res = await app(fake(HISTORY, "good")).request("/ui/snapshots");
  expect(res.status).toBe(403);
  const html = await res.text();
  expect(html).not.toContain("alpha");
  expect(html).not.toContain("data-op=");
});
