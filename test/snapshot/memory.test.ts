// Memory stays bounded whatever the file's size: write, verify and stream a large snapshot generated on
// the fly, sampling RSS throughout. 256 MiB of state by default; EDGENODE_LONG=1 uses 1 GiB.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SnapshotRecord } from "../../src/snapshot/format.ts";
import { fileChunks, readSnapshot, verifySnapshot } from "../../src/snapshot/reader.ts";
import { snapshotStream, writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { header, textPool, variableRecords } from "./fixture.ts";

const LONG = process.env.EDGENODE_LONG === "1";
const MIB = 1 << 20;
const STATE_MIB = LONG ? 1024 : 256;
const LIMIT_MIB = 64;
const dir = mkdtempSync(join(tmpdir(), "edgenode-snapmem-"));
const pool = textPool(11, MIB);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** RSS growth over a baseline taken after a full GC, sampled at the points `sample` is called. */
function meter(): { sample: () => void; growthMiB: () => number } {
  Bun.gc(true);
  const base = process.memoryUsage.rss();
  let peak = base;
  return {
    sample: () => {
      peak = Math.max(peak, process.memoryUsage.rss());
    },
    growthMiB: () => (peak - base) / MIB,
  };
}

function sampled(records: Iterable<SnapshotRecord>, sample: () => void): Generator<SnapshotRecord> {
  return (function* () {
    let i = 0;
    for (const r of records) {
      if ((++i & 1023) === 0) sample();
      yield r;
    }
  })();
}

test(
  `write then verify ${STATE_MIB} MiB of state: RSS grows by less than ${LIMIT_MIB} MiB in each`,
  async () => {
    const n = (STATE_MIB * MIB) / 1024;
    const { counts, records } = variableRecords(n, pool);
    const path = join(dir, "big.snap");

    const w = meter();
    let t = performance.now();
    const res = await writeSnapshotFile(path, header(counts), sampled(records(), w.sample));
    const writeMs = performance.now() - t;
    expect(statSync(path).size).toBe(res.size);

    const r = meter();
    t = performance.now();
    const reader = readSnapshot(fileChunks(path));
    let seen = 0;
    let k = 0;
    for await (const batch of reader.batches) {
      seen += batch.length;
      // What must stay bounded is what the reader retains; a collection now and then keeps garbage the
      // engine has not yet collected (it varies with whatever ran before in this process) out of it.
      if (++k % 32 === 0) Bun.gc(false);
      r.sample();
    }
    const readMs = performance.now() - t;
    expect(seen).toBe(n + 10);
    expect(reader.result?.sha256).toBe(res.sha256);

    console.log(
      `snapshot memory: ${STATE_MIB} MiB state, ${(res.size / MIB).toFixed(0)} MiB file; write ${writeMs.toFixed(0)} ms, +${w.growthMiB().toFixed(1)} MiB RSS; ` +
        `verify ${readMs.toFixed(0)} ms, +${r.growthMiB().toFixed(1)} MiB RSS`,
    );
    expect(w.growthMiB()).toBeLessThan(LIMIT_MIB);
    expect(r.growthMiB()).toBeLessThan(LIMIT_MIB);
    rmSync(path);
  },
  LONG ? 600_000 : 90_000,
);

test(
  `streaming ${STATE_MIB / 2} MiB from snapshotStream straight into verifySnapshot stays bounded`,
  async () => {
    const n = (STATE_MIB / 2) * 1024;
    const { counts, records } = variableRecords(n, pool);
    const m = meter();
    const stream = snapshotStream(header(counts), sampled(records(), m.sample));
    const v = await verifySnapshot(stream);
    expect(v.records).toBe(n + 10);
    console.log(`snapshot memory: stream ${STATE_MIB / 2} MiB through verify, +${m.growthMiB().toFixed(1)} MiB RSS`);
    expect(m.growthMiB()).toBeLessThan(LIMIT_MIB);
  },
  LONG ? 600_000 : 90_000,
);
