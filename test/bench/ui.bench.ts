// Budget of the cluster page (issue #26): server time to answer GET /ui/ (< 50 ms) and page weight
// with everything it loads (< 100 KiB: the page and its one script; the stylesheet is inline and
// there are no images or fonts). Measured on a real 3-server cluster of the compiled binary
// (request time, leader and follower) beside the in-process render alone; baseline in the same run:
// GET /v1/operator/raft/configuration, the API call the page makes first. Exits 1 over budget.
// Run: bun test/bench/ui.bench.ts
import { loadavg } from "node:os";
import { Cluster } from "../cluster/harness.ts";

const BUDGET_MS = 50;
const BUDGET_BYTES = 100 * 1024;
const ROUNDS = 200;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? Number.NaN;

async function timed(url: string): Promise<{ ms: number; bytes: number; body: string }> {
  const s = performance.now();
  const r = await fetch(url);
  const body = await r.text();
  const ms = performance.now() - s;
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${body.slice(0, 200)}`);
  return { ms, bytes: new TextEncoder().encode(body).length, body };
}

const cluster = new Cluster("uibench");
let over = false;
try {
  await cluster.init();
  await cluster.startServers(3);
  const leader = await cluster.waitForLeader(15_000);
  const follower = cluster.followers(leader)[0];
  if (!follower) throw new Error("no follower");
  const rows: string[] = [];
  for (const [who, s] of [
    ["leader", leader],
    ["follower", follower],
  ] as const) {
    const page: number[] = [];
    const api: number[] = [];
    let bytes = 0;
    let body = "";
    for (let i = 0; i < 10; i++) await timed(`${s.url}/ui/`); // warm-up
    // Alternating A (API baseline) and B (page) so load on the shared machine hits both alike.
    for (let i = 0; i < ROUNDS; i++) {
      api.push((await timed(`${s.url}/v1/operator/raft/configuration`)).ms);
      const r = await timed(`${s.url}/ui/`);
      page.push(r.ms);
      bytes = r.bytes;
      body = r.body;
    }
    // Everything the page loads: its one script (/ui/app.js) is counted in the weight; any other
    // resource (an image, a stylesheet link) would be another request the budget does not count.
    if (/<img|<link|@import|url\(/i.test(body)) throw new Error("the page loads another resource; count it in the weight");
    for (const m of body.matchAll(/<script src="([^"]+)"/g)) bytes += (await timed(`${s.url}${m[1]}`)).bytes;
    if (/src=/i.test(body.replace(/<script src="[^"]+"/g, ""))) throw new Error("the page loads another resource; count it in the weight");
    rows.push(`| GET /ui/ on the ${who} | ${median(page).toFixed(2)} | ${p99(page).toFixed(2)} | ${(bytes / 1024).toFixed(1)} |`);
    rows.push(`| baseline: GET /v1/operator/raft/configuration on the ${who} | ${median(api).toFixed(2)} | ${p99(api).toFixed(2)} | – |`);
    if (median(page) > BUDGET_MS || bytes > BUDGET_BYTES) over = true;
  }
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}; ${ROUNDS} requests each, alternating`,
  );
  console.log("| request | median ms | p99 ms | KiB |\n|---|---:|---:|---:|");
  for (const r of rows) console.log(r);
  console.log(`budget: median < ${BUDGET_MS} ms, weight < ${BUDGET_BYTES / 1024} KiB: ${over ? "OVER" : "within"}`);
} finally {
  await cluster.cleanup();
}
if (over) process.exit(1);
