// The committed cluster version as replicated state: set by its entry at an index, carried in the
// header of a snapshot of a view at or after that index (format 2), taken back when a snapshot loads;
// a snapshot from before any entry stays format 1, which the previous release reads, and the previous
// release refuses a format 2 file at its preamble, naming both formats, before anything changes.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "../../src/lib/codec.ts";
import { EntryType } from "../../src/raft/storage.ts";
import { readSnapshotHeader } from "../../src/snapshot/reader.ts";
import { CommittedVersion } from "../../src/server/cluster_version.ts";
import { allows, compareVersions, releaseOf } from "../../src/server/features.ts";
import { Fsm } from "../../src/server/fsm.ts";
import { startDevBinary } from "../support/dev_binary.ts";
import { previousReleaseBinary } from "../upgrade/previous_release.ts";

const newFsm = () =>
  new Fsm(
    () => "global",
    () => "cluster-1",
  );
const entry = (index: number, cmd: unknown) => ({ index, term: 1, type: EntryType.Normal, data: encode(cmd) });
const config = { servers: [{ id: "a", address: "127.0.0.1:1", voter: true }] };

async function snapshotOf(fsm: Fsm, index: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const result = { size: 0, sha256: "", digest: "", records: 0 };
  for await (const c of fsm.snapshotChunks(fsm.state.view(), { index, term: 1, config }, `1-${index}`, result, {})) chunks.push(c);
  return Buffer.concat(chunks);
}

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b.slice();
}

describe("versions", () => {
  test("a source build is its release; releases compare by number", () => {
    expect(releaseOf("0.2.0-dev")).toBe("0.2.0");
    expect(releaseOf("banana")).toBeUndefined();
    expect(compareVersions("0.10.0", "0.9.3")).toBeGreaterThan(0);
    expect(compareVersions("0.2.0-dev", "0.2.0")).toBe(0);
    expect(allows("0.1.0", "cluster-version")).toBe(false);
    expect(allows("0.2.0", "cluster-version")).toBe(true);
  });

  test("the version in effect at an index: none before the first entry, each entry's from its index on", () => {
    const v = new CommittedVersion();
    expect(v.written).toBe(false);
    expect(v.version).toBe("0.1.0");
    v.apply(10, { op: "cluster_version", version: "0.2.0-dev" });
    v.apply(20, { op: "cluster_version", version: "0.3.0" });
    expect(v.version).toBe("0.3.0");
    expect([v.at(9), v.at(10), v.at(19), v.at(25)]).toEqual([undefined, "0.2.0", "0.2.0", "0.3.0"]);
    v.loaded(30, undefined);
    expect([v.written, v.version, v.at(31)]).toEqual([false, "0.1.0", undefined]);
    expect(() => v.loaded(40, "not-a-version")).toThrow(/not a version/);
    expect(v.written).toBe(false);
  });
});

describe("the cluster version in snapshots", () => {
  test("format 1 before the entry, format 2 carrying it after; a loaded snapshot brings it back", async () => {
    const fsm = newFsm();
    await fsm.apply(entry(1, { op: "var.put", path: "a", items: { k: "v" }, now: 1 }));
    const before = await snapshotOf(fsm, 1);
    const h1 = await readSnapshotHeader(once(before));
    expect(h1.formatVersion).toBe(1);
    expect(h1.clusterVersion).toBeUndefined();

    expect(await fsm.apply(entry(2, { op: "cluster_version", version: "0.2.0" }))).toEqual({ Version: "0.2.0" });
    expect(fsm.clusterVersion.version).toBe("0.2.0");
    // A view taken at index 1 (before the entry) still says nothing, whatever applied since.
    expect((await readSnapshotHeader(once(await snapshotOf(fsm, 1)))).formatVersion).toBe(1);
    const after = await snapshotOf(fsm, 2);
    const h2 = await readSnapshotHeader(once(after));
    expect(h2.formatVersion).toBe(2);
    expect(h2.clusterVersion).toBe("0.2.0");

    const other = newFsm();
    other.replaceStore(await other.loadFrom(once(after), 2));
    expect(other.clusterVersion.version).toBe("0.2.0");
    expect(other.state.view().counts()).toEqual(fsm.state.view().counts());
    // Loading a snapshot from before any entry puts the cluster back at the first release.
    other.replaceStore(await other.loadFrom(once(before), 1));
    expect(other.clusterVersion.written).toBe(false);
  });

  test("the previous release reads a format 1 file and refuses a format 2 file naming both formats", async () => {
    const fsm = newFsm();
    await fsm.apply(entry(1, { op: "var.put", path: "a", items: { k: "v" }, now: 1 }));
    const dir = mkdtempSync(join(tmpdir(), "cluster-version-"));
    try {
      const v1 = join(dir, "v1.snap");
      writeFileSync(v1, await snapshotOf(fsm, 1));
      await fsm.apply(entry(2, { op: "cluster_version", version: "0.2.0" }));
      const v2 = join(dir, "v2.snap");
      writeFileSync(v2, await snapshotOf(fsm, 2));
      const old = await previousReleaseBinary();
      const inspect = (f: string) => Bun.spawnSync([old, "operator", "snapshot", "inspect", f], { stdout: "pipe", stderr: "pipe" });
      const r1 = inspect(v1);
      expect(r1.exitCode).toBe(0);
      expect(r1.stdout.toString()).toMatch(/Version\s+1/);
      const r2 = inspect(v2);
      expect(r2.exitCode).not.toBe(0);
      expect(r2.stderr.toString()).toContain("snapshot format version 2 is newer than this edgenode supports (format version 1)");

      // Restored on a running server of the previous release: refused with the same words, its state unchanged.
      const agent = await startDevBinary(old, { dir });
      try {
        const put = await fetch(`${agent.url}/v1/var/marker`, { method: "PUT", body: JSON.stringify({ Items: { kept: "yes" } }) });
        expect(put.status).toBe(200);
        const before = Number((await fetch(`${agent.url}/v1/var/marker`)).headers.get("X-Edgenode-Index"));
        expect(before).toBeGreaterThan(0);
        const r = await fetch(`${agent.url}/v1/operator/snapshot`, { method: "PUT", body: readFileSync(v2) });
        expect(r.status).toBe(400);
        expect(await r.text()).toContain("snapshot format version 2 is newer than this edgenode supports (format version 1)");
        const got = await fetch(`${agent.url}/v1/var/marker`);
        expect(((await got.json()) as { Items: Record<string, string> }).Items).toEqual({ kept: "yes" });
        expect(Number(got.headers.get("X-Edgenode-Index"))).toBe(before);
      } finally {
        agent.proc.kill("SIGKILL");
        await agent.exited;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);
});
