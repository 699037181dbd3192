// Memory stays bounded whatever the file's size: write, verify and stream a large snapshot generated on
// the fly, sampling RSS throughout. 256 MiB of state by default; EDGENODE_LONG=1 uses 1 GiB. Each
// measurement runs in a fresh process (fixtures/memory_child.ts): in the test runner's own process the
// heap left by earlier test files moved the figure by 30 MiB.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LONG = process.env.EDGENODE_LONG === "1";
const STATE_MIB = LONG ? 1024 : 256;
const LIMIT_MIB = 64;
const dir = mkdtempSync(join(tmpdir(), "edgenode-snapmem-"));
const CHILD = join(import.meta.dir, "fixtures", "memory_child.ts");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function child<T>(mode: string): Promise<T> {
  const p = Bun.spawn([process.execPath, CHILD, mode, String(STATE_MIB), dir], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`memory child (${mode}) exited ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").at(-1) as string) as T;
}

test(
  `write then verify ${STATE_MIB} MiB of state: RSS grows by less than ${LIMIT_MIB} MiB in each`,
  async () => {
    const r = await child<{
      n: number;
      seen: number;
      fileBytes: number;
      writeMs: number;
      readMs: number;
      writeGrowth: number;
      verifyGrowth: number;
      sha256: string;
      readSha256: string;
    }>("write-verify");
    console.log(
      `snapshot memory: ${STATE_MIB} MiB state, ${(r.fileBytes / (1 << 20)).toFixed(0)} MiB file; write ${r.writeMs.toFixed(0)} ms, +${r.writeGrowth.toFixed(1)} MiB RSS; ` +
        `verify ${r.readMs.toFixed(0)} ms, +${r.verifyGrowth.toFixed(1)} MiB RSS`,
    );
    expect(r.seen).toBe(r.n + 10);
    expect(r.readSha256).toBe(r.sha256);
    expect(r.writeGrowth).toBeLessThan(LIMIT_MIB);
    expect(r.verifyGrowth).toBeLessThan(LIMIT_MIB);
  },
  LONG ? 600_000 : 90_000,
);

test(
  `streaming ${STATE_MIB / 2} MiB from snapshotStream straight into verifySnapshot stays bounded`,
  async () => {
    const r = await child<{ n: number; records: number; growth: number }>("stream");
    console.log(`snapshot memory: stream ${STATE_MIB / 2} MiB through verify, +${r.growth.toFixed(1)} MiB RSS`);
    expect(r.records).toBe(r.n + 10);
    expect(r.growth).toBeLessThan(LIMIT_MIB);
  },
  LONG ? 600_000 : 90_000,
);
