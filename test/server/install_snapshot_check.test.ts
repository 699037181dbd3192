// A server stores a snapshot sent with Raft.InstallSnapshot before raft sees the message, so the
// transport and the store refuse what must never be stored: a file of another index or term than its
// message names (loaded, it would have the entries between the two applied twice, or never), a
// message meant for another server, and one from a server outside the configuration.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { message } from "../../src/raft/message.ts";
import { fileChunks } from "../../src/snapshot/reader.ts";
import type { WriteResult } from "../../src/snapshot/writer.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { startAgent, type Agent } from "../acl/harness.ts";
import { writeVarsSnapshot } from "../cluster/snapshot_cluster.ts";

let agent: Agent;
let pool: ConnPool;
let file = "";
let made: WriteResult;
const dir = mkdtempSync(join(tmpdir(), "edgenode-install-check-"));

beforeAll(async () => {
  agent = await startAgent(false);
  pool = new ConnPool();
  file = join(dir, "other.snap");
  // A valid snapshot file of index 10 + 50 = 60, term 1.
  made = await writeVarsSnapshot(file, "x", 50, 100);
});

afterAll(async () => {
  await pool.close();
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends `file` as the snapshot `meta` names; resolves with the error the receiver ended the stream with, if any. */
async function send(
  meta: { index: number; term: number },
  to = agent.server.nodeId,
  from = agent.server.nodeId,
): Promise<string | undefined> {
  // From a member (the one-server cluster's only member is the server itself), so the checks below are reached.
  const m = message({ type: "snap", from, to, term: 1, snapshot: { ...meta, config: { servers: [] } } });
  const stream = await pool.openStream(
    `127.0.0.1:${agent.server.cfg.ports.rpc}`,
    "Raft.InstallSnapshot",
    { message: m },
    { timeoutMs: 5_000 },
  );
  try {
    for await (const c of fileChunks(file, 16 * 1024)) await stream.send(c);
    await stream.end();
  } catch {
    // The receiver gave up before the end: its reason comes on the read side.
  }
  try {
    for await (const _ of stream) {
      // the receiver's end
    }
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

const storedAt = (index: number) => agent.server.snapshots.list().some((s) => s.index === index);

test("a file of another index than its message names is refused and not stored", async () => {
  expect(made.size).toBeGreaterThan(0);
  const err = await send({ index: 12_345, term: 1 });
  expect(err).toContain("is of index 60 term 1, but its message names index 12345 term 1");
  expect(storedAt(12_345)).toBe(false);
});

test("a file of another term than its message names is refused and not stored", async () => {
  const err = await send({ index: 60, term: 7 });
  expect(err).toContain("but its message names index 60 term 7");
  expect(storedAt(60)).toBe(false);
});

test("a snapshot from a server outside the configuration is refused before anything is stored", async () => {
  const err = await send({ index: 60, term: 1 }, agent.server.nodeId, "someone-else");
  expect(err).toContain("snapshot from someone-else refused: not_member");
  expect(storedAt(60)).toBe(false);
});

test("a snapshot message for another server is refused and not stored", async () => {
  const err = await send({ index: 60, term: 1 }, "not-this-server");
  expect(err).toContain("is for not-this-server, not this server");
  expect(storedAt(60)).toBe(false);
});
