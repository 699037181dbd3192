// Budget of the cluster page (issue #26), the Snapshots page held to the same: server time to answer
// GET /ui/ and GET /ui/snapshots (< 50 ms) and page weight with everything it loads (< 100 KiB: the page
// and its one script; the stylesheet is inline and there are no images or fonts). Measured on a real
// 3-server cluster of the compiled binary (request time, leader and follower); baselines in the same
// run: the API calls each page makes (PAGES). Exits 1 over budget.
// Run: bun test/bench/ui.bench.ts
import { loadavg } from "node:os";
import { Cluster } from "../cluster/harness.ts";

const BUDGET_MS = 50;
const BUDGET_BYTES = 100 * 1024;
const ROUNDS = 200;
/**
 * Each page with the API calls it makes as baselines: the cluster page reads the configuration, then the
 * leader's health, the raft stats (this server asks every server) and autopilot's configuration at once;
 * the Snapshots page reads the history (this server asks every server). The budget holds for each page.
 */
const PAGES = [
  { path: "/ui/", apis: ["/v1/operator/raft/configuration", "/v1/operator/raft/stats"] },
  { path: "/ui/snapshots", apis: ["/v1/operator/snapshot/history"] },
];

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

const loadBefore = loadavg();
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
    for (const { path, apis } of PAGES) {
      const page: number[] = [];
      const api = apis.map(() => [] as number[]);
      let bytes = 0;
      let body = "";
      for (let i = 0; i < 10; i++) await timed(`${s.url}${path}`); // warm-up
      // Alternating the API baselines and the page so load on the shared machine hits them alike.
      for (let i = 0; i < ROUNDS; i++) {
        for (const [j, a] of apis.entries()) api[j]?.push((await timed(`${s.url}${a}`)).ms);
        const r = await timed(`${s.url}${path}`);
        page.push(r.ms);
        bytes = r.bytes;
        body = r.body;
      }
      // Everything the page loads: its one script (/ui/app.js) is counted in the weight; any other
      // resource (an image, a stylesheet link) would be another request the budget does not count.
      if (/<img|<link|@import|url\(/i.test(body)) throw new Error("the page loads another resource; count it in the weight");
      for (const m of body.matchAll(/<script src="([^"]+)"/g)) bytes += (await timed(`${s.url}${m[1]}`)).bytes;
      if (/src=/i.test(body.replace(/<script src="[^"]+"/g, "")))
        throw new Error("the page loads another resource; count it in the weight");
      rows.push(`| GET ${path} on the ${who} | ${median(page).toFixed(2)} | ${p99(page).toFixed(2)} | ${(bytes / 1024).toFixed(1)} |`);
      for (const [j, a] of apis.entries())
        rows.push(`| baseline: GET ${a} on the ${who} | ${median(api[j] ?? []).toFixed(2)} | ${p99(api[j] ?? []).toFixed(2)} | – |`);
      if (median(page) > BUDGET_MS || bytes > BUDGET_BYTES) over = true;
    }
  }
  console.log(
    `load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")} before, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} after; ${ROUNDS} requests each, alternating`,
  );
  console.log("| request | median ms | p99 ms | KiB |\n|---|---:|---:|---:|");
  for (const r of rows) console.log(r);
  console.log(`budget: median < ${BUDGET_MS} ms, weight < ${BUDGET_BYTES / 1024} KiB: ${over ? "OVER" : "within"}`);
} finally {
  await cluster.cleanup();
}
if (over) process.exit(1);
