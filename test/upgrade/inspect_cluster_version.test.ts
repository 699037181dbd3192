// `node operator snapshot inspect` shows the cluster version a file's header carries (format 2 on), and
// no such line for a file without one: the previous release's snapshot fixture (format 1). The previous
// release's binary, given the format 2 file, refuses it naming both formats.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/cli/cli.ts";
import { writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { captureIo } from "../cli/capture_io.ts";
import { header, textPool, variableRecords } from "../snapshot/fixture.ts";
import { previousRelease, previousReleaseBinary } from "./previous_release.ts";

const dir = mkdtempSync(join(tmpdir(), "edgenode-inspect-cv-"));
const prev = previousRelease();

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function inspect(path: string): Promise<string> {
  const io = captureIo({ EDGENODE_ADDR: "http://127.0.0.1:1" });
  const code = await runCli(["operator", "snapshot", "inspect", path], io);
  expect(`${code} ${io.stderr()}`).toBe("0 ");
  return io.stdout();
}

describe("operator snapshot inspect and the cluster version", () => {
  test("a format 2 file shows its Cluster Version; the previous release's refuses it naming both formats", async () => {
    const { counts, records } = variableRecords(50, textPool(3));
    const path = join(dir, "v2.snap");
    await writeSnapshotFile(path, header(counts, { clusterVersion: "0.2.0" }), records());
    const out = await inspect(path);
    expect(out).toMatch(/^Version\s+2$/m);
    expect(out).toMatch(/^Cluster Version\s+0\.2\.0$/m);
    expect(out).toMatch(/^vars\s+50$/m);

    const old = Bun.spawnSync([await previousReleaseBinary(), "operator", "snapshot", "inspect", path], { stdout: "pipe", stderr: "pipe" });
    expect(old.exitCode).toBe(1);
    expect(old.stderr.toString()).toContain("snapshot format version 2 is newer than this edgenode supports (format version 1)");
  }, 900_000);

  test(`the previous release's snapshot fixture (${prev.version}, format 1) has no Cluster Version line`, async () => {
    const out = await inspect(join(import.meta.dir, "..", "fixtures", prev.version, "state.snapshot"));
    expect(out).toMatch(/^Version\s+1$/m);
    expect(out).toMatch(new RegExp(`^Producer\\s+${prev.version.replaceAll(".", "\\.")}`, "m"));
    expect(out).not.toContain("Cluster Version");
  });
});
