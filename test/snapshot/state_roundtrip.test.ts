// The contract with the state machine: a view's persist stream and counts go into a snapshot file, and
// the verified reader's records rebuild an identical store.

import { afterAll, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateStore } from "../../src/state/state_store.ts";
import { fileChunks, readSnapshot, verifySnapshotFile } from "../../src/snapshot/reader.ts";
import { writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { header } from "./fixture.ts";

// Whole-file passes over a few MiB, hundreds of times: generous on a loaded 2-core box.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "edgenode-snapstate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a state view written to a snapshot file restores into an identical store", async () => {
  const s = new StateStore();
  let i = 0;
  const hash = (c: string) => c.repeat(64).slice(0, 64);
  s.apply(++i, {
    op: "acl.policy-upsert",
    policy: { Name: "app", Description: "apps", Rules: 'variables { path "app/*" { capabilities = ["read"] } }' },
    now: 10,
  });
  s.apply(++i, {
    op: "acl.bootstrap",
    token: { AccessorID: "root", SecretHash: hash("a"), Name: "Bootstrap", Type: "management", Policies: [], CreateTime: 10 },
    now: 10,
  });
  for (let k = 0; k < 2000; k++)
    s.apply(++i, { op: "var.put", path: `app/${k}`, items: { v: String(k).repeat(50), u: "é✓" }, now: 1000 + k });
  s.apply(++i, { op: "var.lock-acquire", path: "app/7", lockId: "L7", ttlMs: 5000, lockDelayMs: 2000, now: 5000 });

  const view = s.view();
  const path = join(dir, "state.snap");
  const w = await writeSnapshotFile(path, header(view.counts(), { index: view.index }), view.records());
  const v = await verifySnapshotFile(path);
  expect(v.sha256).toBe(w.sha256);
  expect(v.counts).toEqual(view.counts());

  const reader = readSnapshot(fileChunks(path));
  expect((await reader.header).index).toBe(view.index);
  const restored = await StateStore.restore(reader.records, i + 1);
  // Field order may differ (the state machine re-validates each row); contents may not.
  expect([...restored.view().records()]).toEqual([...view.records()]);
  expect(restored.getVar("app/7")?.Lock?.ID).toBe("L7");
});
