// Files written by the previous release (test/fixtures/<release>/, made by test/fixtures/make_fixtures.ts)
// are read by this one: its snapshot file verifies, loads through the state machine and restores onto a
// running server; its data directory (WAL, stable store, raft snapshots) opens with all its data; its
// staged restore file and .applied note are read. A file claiming a newer format is refused, naming
// both versions, before anything changes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/lib/logger.ts";
import { encodePreamble, FORMAT_VERSION, PREAMBLE_BYTES } from "../../src/snapshot/format.ts";
import { readSnapshot, verifySnapshot } from "../../src/snapshot/reader.ts";
import { Fsm } from "../../src/server/fsm.ts";
import { StagedSnapshots } from "../../src/server/staged_snapshots.ts";
import { StateStore } from "../../src/state/state_store.ts";
import { compiledBinary, hcl } from "../cluster/harness.ts";
import { FIXTURE, itemsOf } from "../fixtures/make_fixtures.ts";
import { startDevBinary } from "../support/dev_binary.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";
import { previousRelease } from "./previous_release.ts";

const { version } = previousRelease();
const FIXTURES = join(import.meta.dir, "..", "fixtures", version);
const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as {
  release: string;
  snapshot: { file: string; index: number; vars: number };
  data: { file: string; serverId: string; appliedIndex: number };
  staged: { file: string; id: string; appliedIndex: number; vars: number };
};
const snapshotBytes = () => new Uint8Array(readFileSync(join(FIXTURES, manifest.snapshot.file)));
let work = "";
let binary = "";

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b.slice();
}

function untar(file: string, into: string): void {
  mkdirSync(into, { recursive: true });
  // -m: the files get the time of extraction, as if just written (a day-old staged file is swept as an orphan).
  const r = Bun.spawnSync(["tar", "-xzmf", join(FIXTURES, file), "-C", into], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`tar -x ${file}: ${r.stderr.toString()}`);
}

/** Every file under `dir` with its bytes, to show nothing changed. */
/**
 * Every file under `dir` with its digest, but the agent's lock file (storage/dir_lock.ts): taking the
 * directory writes the agent's PID there before anything is read, and it is no data.
 */
function contents(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (d === dir && e.name === "agent.lock") continue;
      if (e.isDirectory()) walk(p);
      else out.set(p, new Bun.CryptoHasher("sha256").update(readFileSync(p)).digest("hex"));
    }
  };
  walk(dir);
  return out;
}

/** A snapshot file's bytes with the preamble claiming `v` (its CRC made good, so it reads as newer, not corrupt). */
function claimingVersion(bytes: Uint8Array, v: number): Uint8Array {
  const out = bytes.slice();
  out.set(encodePreamble(v).subarray(0, PREAMBLE_BYTES), 0);
  return out;
}

/** The expected variables of the data directory: restored from the snapshot, then after-restore, less the deleted one. */
function expectedDataVars(): Map<string, Record<string, string>> {
  const m = new Map<string, Record<string, string>>();
  for (let i = 0; i < FIXTURE.saved; i++) m.set(`fixture/k${i}`, itemsOf(i));
  for (let i = 0; i < FIXTURE.afterRestore; i++) m.set(`after-restore/k${i}`, itemsOf(i));
  m.delete(FIXTURE.deleted);
  return m;
}

/** Runs this release's agent on `dataDir` as a one-server cluster; resolves once it leads. */
async function agentOn(dataDir: string, dir: string): Promise<{ url: string; proc: Bun.Subprocess; stderr: () => string }> {
  const ports = { http: freePort(), rpc: freePort() };
  const cfg = join(dir, "agent.hcl");
  writeFileSync(cfg, hcl("fixture", dataDir, ports, [], { bootstrapExpect: 1, encrypt: [] }));
  const proc = Bun.spawn([binary, "agent", "-config", cfg], { stdout: "ignore", stderr: "pipe" });
  let err = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr) err += dec.decode(c, { stream: true });
  })().catch(() => {});
  return { url: `http://127.0.0.1:${ports.http}`, proc, stderr: () => err };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "edgenode-fixtures-test-"));
  binary = await compiledBinary(work);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe(`files written by ${version}`, () => {
  test("the manifest is the previous release's", () => {
    expect(manifest.release).toBe(version);
  });

  test("its snapshot file verifies and loads through the state machine with every variable", async () => {
    const v = await verifySnapshot(once(snapshotBytes()));
    expect(v.header.producer).toBe(version);
    expect(v.header.formatVersion).toBe(1);
    expect(v.header.index).toBe(manifest.snapshot.index);
    expect(v.counts.vars).toBe(FIXTURE.saved);
    const fsm = new Fsm(
      () => "global",
      () => "",
    );
    fsm.replaceStore(await fsm.loadFrom(once(snapshotBytes()), manifest.snapshot.index));
    for (let i = 0; i < FIXTURE.saved; i++) expect(fsm.state.getVar(`fixture/k${i}`)?.Items).toEqual(itemsOf(i));
    expect(fsm.clusterVersion.written).toBe(false);
  });

  test("its snapshot file restores onto a server of this release; a copy claiming a newer format is refused first, nothing changed", async () => {
    const dir = join(work, "restore");
    mkdirSync(dir);
    const agent = await startDevBinary(binary, { dir });
    try {
      const put = await fetch(`${agent.url}/v1/var/marker`, { method: "PUT", body: JSON.stringify({ Items: { before: "restore" } }) });
      expect(put.status).toBe(200);
      // build/node is a release build: the test-only gated endpoint (build.ts --test-features) is not in it.
      expect((await fetch(`${agent.url}/v1/operator/test-gated?value=x`, { method: "PUT" })).status).toBe(404);
      const newer = await fetch(`${agent.url}/v1/operator/snapshot`, {
        method: "PUT",
        body: claimingVersion(snapshotBytes(), FORMAT_VERSION + 1),
      });
      expect(newer.status).toBe(400);
      expect(await newer.text()).toContain(
        `snapshot format version ${FORMAT_VERSION + 1} is newer than this edgenode supports (format version ${FORMAT_VERSION})`,
      );
      const still = await fetch(`${agent.url}/v1/var/marker`);
      expect(still.status).toBe(200);
      expect(((await still.json()) as { Items: Record<string, string> }).Items).toEqual({ before: "restore" });

      const r = await fetch(`${agent.url}/v1/operator/snapshot`, { method: "PUT", body: snapshotBytes() });
      expect(r.status).toBe(200);
      for (const i of [0, 7, FIXTURE.saved - 1]) {
        const g = await fetch(`${agent.url}/v1/var/fixture/k${i}`);
        expect(g.status).toBe(200);
        expect(((await g.json()) as { Items: Record<string, string> }).Items).toEqual(itemsOf(i));
      }
      expect((await fetch(`${agent.url}/v1/var/marker`)).status).toBe(404);
    } finally {
      agent.proc.kill("SIGKILL");
      await agent.exited;
    }
  }, 60_000);

  test("its data directory opens under this release with all its data, and takes new writes", async () => {
    const dir = join(work, "datadir");
    untar(manifest.data.file, dir);
    const dataDir = join(dir, "data");
    const agent = await agentOn(dataDir, dir);
    try {
      await waitFor(
        async () => {
          if (agent.proc.exitCode !== null) throw new Error(`the agent exited ${agent.proc.exitCode}: ${agent.stderr().slice(-2000)}`);
          return (await fetch(`${agent.url}/v1/agent/health`).catch(() => undefined))?.status === 200;
        },
        20_000,
        "the agent on the old data directory to lead",
      );
      // Entries past the durable commit index commit again with the new term's first entry.
      const self = await waitFor(
        async () => {
          const s = (await (await fetch(`${agent.url}/v1/agent/self`)).json()) as {
            ID: string;
            Stats: { raft: { applied_index: number } };
          };
          return s.Stats.raft.applied_index >= manifest.data.appliedIndex ? s : undefined;
        },
        10_000,
        `the agent to apply up to ${manifest.data.appliedIndex}`,
      );
      expect(self.ID).toBe(manifest.data.serverId);
      for (const [path, items] of expectedDataVars()) {
        const g = await fetch(`${agent.url}/v1/var/${path}`);
        expect(`${path} ${g.status}`).toBe(`${path} 200`);
        expect(((await g.json()) as { Items: Record<string, string> }).Items).toEqual(items);
      }
      for (const gone of [FIXTURE.deleted, "after-save/k0"]) expect((await fetch(`${agent.url}/v1/var/${gone}`)).status).toBe(404);
      const put = await fetch(`${agent.url}/v1/var/after-upgrade`, { method: "PUT", body: JSON.stringify({ Items: { ok: "yes" } }) });
      expect(put.status).toBe(200);
    } finally {
      agent.proc.kill("SIGTERM");
      await agent.proc.exited;
    }
  }, 60_000);

  test("its staged restore file and .applied note are read", async () => {
    const dir = join(work, "staged");
    untar(manifest.staged.file, dir);
    const staged = new StagedSnapshots(join(dir, "staged"), createLogger({ level: "ERROR", write: () => {} }));
    await staged.init();
    expect([...(await staged.appliedRestores()).entries()]).toEqual([[manifest.staged.id, manifest.staged.appliedIndex]]);
    const store = await StateStore.restore(readSnapshot(staged.open(manifest.staged.id)).records, manifest.staged.appliedIndex);
    expect(store.view().counts().vars).toBe(manifest.staged.vars);
    expect(store.getVar("fixture/k3")?.Items).toEqual(itemsOf(3));
  });

  test("a data directory whose WAL segment or stable store claims a newer format is refused naming both versions, unchanged", async () => {
    for (const [what, patch, message] of [
      [
        "WAL segment",
        (d: string) => {
          const wal = join(d, "raft", "wal");
          const seg = readdirSync(wal).find((f) => f.endsWith(".wal")) as string;
          const b = readFileSync(join(wal, seg));
          b.writeUInt32LE(2, 4);
          b.writeUInt32LE(Bun.hash.crc32(b.subarray(0, 28)), 28);
          writeFileSync(join(wal, seg), b);
        },
        /written by a newer edgenode \(segment format version 2; this edgenode reads version 1\)/,
      ],
      [
        "stable store",
        (d: string) => {
          const p = join(d, "raft", "stable");
          const b = readFileSync(p);
          for (const off of [0, b.length / 2]) if (b.readUInt32LE(off) !== 0) b.writeUInt32LE(2, off + 4);
          writeFileSync(p, b);
        },
        /written by a newer edgenode \(record format version 2; this edgenode reads version 1\)/,
      ],
    ] as const) {
      const dir = join(work, `newer-${what.replace(" ", "-")}`);
      untar(manifest.data.file, dir);
      const dataDir = join(dir, "data");
      patch(dataDir);
      const before = contents(dataDir);
      const agent = await agentOn(dataDir, dir);
      const code = await agent.proc.exited;
      expect(`${what}: exit ${code}`).not.toBe(`${what}: exit 0`);
      expect(agent.stderr()).toMatch(message);
      expect(contents(dataDir)).toEqual(before);
    }
  }, 60_000);
});
