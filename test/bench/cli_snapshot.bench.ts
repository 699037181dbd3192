// Snapshot save and restore through the CLI's client path beside curl in the same run, against a
// local fake agent (so the numbers are the client's cost: stream, hash, write, fsync, verify).
// Run: bun test/bench/cli_snapshot.bench.ts
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../../src/api/client.ts";
import { snapshotRestore } from "../../src/api/snapshot.ts";
import { fileUploadStream, saveSnapshot } from "../../src/cli/snapshot.ts";
import { verifySnapshotFile } from "../../src/snapshot/reader.ts";
import { writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { header, textPool, variableRecords } from "../snapshot/fixture.ts";

const RUNS = 3;
const dir = mkdtempSync(join(tmpdir(), "edgenode-bench-cli-"));
const src = join(dir, "src.snap");
const { counts, records } = variableRecords(Number(process.env.RECORDS ?? 40_000), textPool(3));
await writeSnapshotFile(src, header(counts), records());
const size = statSync(src).size;
const digest = new Bun.CryptoHasher("sha256").update(await Bun.file(src).bytes()).digest("base64");

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  idleTimeout: 0,
  async fetch(req) {
    if (req.method === "GET") return new Response(Bun.file(src), { headers: { Digest: `sha-256=${digest}`, "X-Edgenode-Index": "19" } });
    const h = new Bun.CryptoHasher("sha256");
    for await (const c of req.body!) h.update(c);
    return Response.json({ Index: 20, ok: h.digest("base64") === digest });
  },
});
const url = `http://127.0.0.1:${server.port}/v1/operator/snapshot`;
const client = new ApiClient({ address: `http://127.0.0.1:${server.port}` });
const quietIo = { out: () => {}, err: (s: string) => process.stderr.write(`${s}\n`), errIsTTY: false, env: {} };

async function time(fn: (i: number) => Promise<void>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn(i);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

async function curl(args: string[]): Promise<void> {
  const p = Bun.spawn(["curl", "-sS", "-f", ...args], { stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`curl failed: ${await new Response(p.stderr).text()}`);
}

let n = 0;
const rows: [string, number][] = [];
rows.push(["download: curl -o FILE (baseline)", await time(async () => curl(["-o", join(dir, `c${n++}.snap`), url]))]);
rows.push([
  "download: node operator snapshot save (stream, sha-256, write, fdatasync, verify)",
  await time(async () => {
    const code = await saveSnapshot(quietIo, client, join(dir, `s${n++}.snap`), false);
    if (code !== 0) throw new Error("save failed");
  }),
]);
rows.push([
  "  of which: verifySnapshotFile alone",
  await time(async () => {
    await verifySnapshotFile(src);
  }),
]);
rows.push(["upload: curl -T FILE (baseline)", await time(async () => curl(["-T", src, url]))]);
rows.push([
  "upload: node operator snapshot restore (file stream)",
  await time(async () => {
    const r = await snapshotRestore(
      client,
      fileUploadStream(src, () => {}),
    );
    if (r.ok !== true) throw new Error("upload corrupted");
  }),
]);

server.stop(true);
rmSync(dir, { recursive: true, force: true });

const mib = size / (1 << 20);
console.log(`\nSnapshot of ${mib.toFixed(1)} MiB, median of ${RUNS} runs, fake agent on loopback\n`);
console.log("| path | median ms | MiB/s |");
console.log("|---|---:|---:|");
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} | ${(mib / (ms / 1000)).toFixed(0)} |`);
