// GrowingFile (growing_file.ts), the leader's spool as each staging peer's sender reads it: readers tail
// what the SpoolThrough has written, each at its own pace, end exactly when the writer says the file is
// complete, throw when the writer fails, and keep reading a file renamed under them.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrowingFile } from "../../src/server/growing_file.ts";
import { SpoolThrough } from "../../src/server/staged_snapshots.ts";
import { waitFor } from "../support/wait.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-growing-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function chunk(i: number, size = 1000): Uint8Array {
  return new Uint8Array(size).fill(i & 0xff);
}

async function collect(chunks: AsyncIterable<Uint8Array>, into: Uint8Array[]): Promise<number> {
  let size = 0;
  for await (const c of chunks) {
    into.push(c);
    size += c.byteLength;
  }
  return size;
}

describe("GrowingFile", () => {
  test("readers get every byte the spool wrote, a whole chunk at a time as it is written, and end once the file is complete", async () => {
    const path = join(root, `f${n++}`);
    const g = new GrowingFile(path);
    const sp = await SpoolThrough.create(path, (size) => g.grew(size));
    const a = await g.reader(500);
    const b = await g.reader();
    const gotA: Uint8Array[] = [];
    const gotB: Uint8Array[] = [];
    const doneA = collect(a.chunks, gotA);
    const doneB = collect(b.chunks, gotB);
    const src = (async function* () {
      for (let i = 0; i < 5; i++) yield chunk(i);
    })();
    let passed = 0;
    for await (const _ of sp.through(src, (size) => g.end(size))) {
      passed++;
      // Each chunk reaches the readers while the writer is still going.
      await waitFor(() => gotA.reduce((s, c) => s + c.byteLength, 0) >= passed * 1000 || undefined, 2_000, "reader A to catch up");
    }
    expect(await doneA).toBe(5000);
    expect(await doneB).toBe(5000);
    const whole = Buffer.concat(gotA);
    for (let i = 0; i < 5; i++) expect(whole.subarray(i * 1000, (i + 1) * 1000).every((x) => x === i)).toBe(true);
    expect(Buffer.concat(gotB).equals(whole)).toBe(true);
    // Whole chunks while the file grows: A's (500 B) as each write lands, B's (256 KiB) only once complete.
    expect(gotA.every((c) => c.byteLength === 500)).toBe(true);
    expect(gotB.length).toBe(1);
    await sp.finish();
    await a.close();
    await b.close();
  });

  test("a failed writer makes waiting readers throw its error", async () => {
    const path = join(root, `f${n++}`);
    const g = new GrowingFile(path);
    const sp = await SpoolThrough.create(path, (size) => g.grew(size));
    const r = await g.reader();
    const done = collect(r.chunks, []);
    const src = (async function* () {
      yield chunk(1);
    })();
    for await (const _ of sp.through(src)) {
      // nothing: the writer stops after one chunk without completing the file
    }
    g.fail(new Error("the upload was refused"));
    await expect(done).rejects.toThrow("the upload was refused");
    await r.close();
    await sp.abort();
  });

  test("a reader opened before the file is renamed reads it to the end", async () => {
    const path = join(root, `f${n++}`);
    const g = new GrowingFile(path);
    const sp = await SpoolThrough.create(path, (size) => g.grew(size));
    const r = await g.reader();
    const src = (async function* () {
      for (let i = 0; i < 3; i++) yield chunk(i, 4096);
    })();
    for await (const _ of sp.through(src, (size) => g.end(size))) {
      // the writer runs ahead of the reader
    }
    await sp.finish();
    renameSync(path, `${path}.kept`);
    expect(await collect(r.chunks, [])).toBe(3 * 4096);
    await r.close();
  });
});
