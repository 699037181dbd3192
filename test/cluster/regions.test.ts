// Two federated regions on loopback: "global" (one server) and "east" (three servers), each pointing
// at the other, plus a configured region "west" whose server is not running. Variables, a blocking
// query and a snapshot save and restore go through ?region=; a down or unknown region is a clear error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { allocPorts, leaderAmong, run, startConfigured } from "./configured.ts";
import { Cluster, freePort, waitFor, withLogs, type ClusterServer, type VarReply } from "./harness.ts";
import { expectLeaderServesRestored } from "./snapshot_cluster.ts";

const globalRegion = new Cluster("region-global");
const eastRegion = new Cluster("region-east");
let g: ClusterServer;
let east: ClusterServer[] = [];
const westPort = freePort();

function federation(regions: Record<string, string[]>): string {
  const blocks = Object.entries(regions).map(
    ([name, addrs]) => `  region "${name}" { servers = [${addrs.map((a) => `"${a}"`).join(", ")}] }`,
  );
  return `federation {\n${blocks.join("\n")}\n}\n`;
}

async function both(fn: () => Promise<void>): Promise<void> {
  await withLogs(globalRegion, () => withLogs(eastRegion, fn));
}

beforeAll(async () => {
  await globalRegion.init();
  await eastRegion.init();
  const gPorts = allocPorts(1);
  const ePorts = allocPorts(3);
  const eAddrs = ePorts.map((p) => `127.0.0.1:${p.rpc}`);
  const gAddrs = gPorts.map((p) => `127.0.0.1:${p.rpc}`);
  [g] = startConfigured(globalRegion, gPorts, () => federation({ east: eAddrs, west: [`127.0.0.1:${westPort}`] })) as [ClusterServer];
  // Federated regions share one cluster key: a forwarded request is a server-to-server session.
  east = startConfigured(eastRegion, ePorts, () => `region = "east"\n${federation({ global: gAddrs })}`, { encrypt: [globalRegion.key] });
  await Promise.all([g, ...east].map((s) => s.waitHttp()));
  await leaderAmong([g]);
  await leaderAmong(east);
}, 60_000);

afterAll(async () => {
  await Promise.all([globalRegion.cleanup(), eastRegion.cleanup()]);
});

describe("federated regions", () => {
  test(
    "/v1/regions lists this server's region and its federation, sorted",
    () =>
      both(async () => {
        expect((await g.get<string[]>("/v1/regions")).body).toEqual(["east", "global", "west"]);
        for (const s of east) expect((await s.get<string[]>("/v1/regions")).body).toEqual(["east", "global"]);
      }),
    20_000,
  );

  test(
    "variables written and read with ?region= live in that region only",
    () =>
      both(async () => {
        const put = await g.put<VarReply>("/v1/var/fed/a?region=east", { Items: { from: "global" } });
        expect(put.status).toBe(200);
        for (const s of east) {
          const r = await s.get<VarReply>("/v1/var/fed/a");
          expect(r.status).toBe(200);
          expect(r.body.Items).toEqual({ from: "global" });
        }
        expect((await g.get("/v1/var/fed/a")).status).toBe(404);
        const viaG = await g.get<VarReply>("/v1/var/fed/a?region=east");
        expect(viaG.status).toBe(200);
        expect(viaG.body.ModifyIndex).toBe(put.body.ModifyIndex);
        expect(Number(viaG.headers.get("X-Edgenode-Index"))).toBeGreaterThanOrEqual(put.body.ModifyIndex);

        // And the other way, from an east follower to global.
        const eLeader = await leaderAmong(east);
        const ef = east.find((s) => s !== eLeader)!;
        expect((await ef.put<VarReply>("/v1/var/fed/b?region=global", { Items: { from: "east" } })).status).toBe(200);
        expect((await g.get<VarReply>("/v1/var/fed/b")).body.Items).toEqual({ from: "east" });
        expect((await ef.get("/v1/var/fed/b")).status).toBe(404);
        const list = await g.get<{ Path: string }[]>("/v1/vars?prefix=fed/&region=east");
        expect(list.body.map((v) => v.Path)).toEqual(["fed/a"]);

        // CAS conflicts and locks come back through the forward with their status.
        const cas = await g.put<VarReply>("/v1/var/fed/a?region=east&cas=0", { Items: { x: "1" } });
        expect(cas.status).toBe(409);
        expect(cas.body.Items).toEqual({ from: "global" });
        const lock = await g.put<VarReply & { Lock: { ID: string } }>("/v1/var/fed/lock?region=east&lock-acquire", {
          Lock: { TTL: "10s", LockDelay: "0s" },
        });
        expect(lock.status).toBe(200);
        expect((await east[0]!.put("/v1/var/fed/lock", { Items: { x: "1" } })).status).toBe(409);
        expect((await g.put("/v1/var/fed/lock?region=east&lock-release", { Lock: { ID: lock.body.Lock.ID } })).status).toBe(200);
      }),
    30_000,
  );

  test(
    "a blocking query forwarded to the other region wakes on a write there",
    () =>
      both(async () => {
        const first = await g.put<VarReply>("/v1/var/fed/blk?region=east", { Items: { n: "1" } });
        const index = first.body.ModifyIndex;
        let answeredAt = 0;
        const blocked = g.get<VarReply>(`/v1/var/fed/blk?region=east&index=${index}&wait=30s`, 40_000).then((r) => {
          answeredAt = performance.now();
          return r;
        });
        // Still blocked while nothing changes (a deliberately bounded observation).
        await Bun.sleep(700);
        expect(answeredAt).toBe(0);
        const writtenAt = performance.now();
        const second = await east[1]!.putVar("fed/blk", { n: "2" });
        const r = await blocked;
        expect(r.status).toBe(200);
        expect(r.body.Items).toEqual({ n: "2" });
        expect(Number(r.headers.get("X-Edgenode-Index"))).toBeGreaterThanOrEqual(second.ModifyIndex);
        expect(answeredAt).toBeGreaterThanOrEqual(writtenAt);
        expect(answeredAt - writtenAt).toBeLessThan(10_000);
      }),
    30_000,
  );

  test(
    "a snapshot saved from another region is that region's state, and restores into it through the forward",
    () =>
      both(async () => {
        await g.putVar("snap/global-only", { keep: "yes" });
        await g.putVar("snap/x", { v: "east-before" }, "?region=east");
        const save = await fetch(`${g.url}/v1/operator/snapshot?region=east`, { signal: AbortSignal.timeout(20_000) });
        expect(save.status).toBe(200);
        const bytes = new Uint8Array(await save.arrayBuffer());
        const digest = save.headers.get("Digest") ?? "";
        const want = new Bun.CryptoHasher("sha256").update(bytes).digest("base64");
        expect(digest).toBe(`sha-256=${want}`);
        const file = join(globalRegion.dir, "east.snap");
        writeFileSync(file, bytes);
        const inspect = run([join(globalRegion.dir, "node"), "operator", "snapshot", "inspect", file]);
        expect(inspect).toMatch(/Region\s+east/);

        // East moves on; global's own state is not touched by any of this.
        await east[2]!.putVar("snap/x", { v: "east-after" });
        await east[2]!.putVar("snap/new", { v: "gone after restore" });
        const before = await east[0]!.get<VarReply>("/v1/var/snap/x");
        const restore = await fetch(`${g.url}/v1/operator/snapshot?region=east`, {
          method: "PUT",
          body: bytes,
          signal: AbortSignal.timeout(30_000),
        });
        const restoreText = await restore.text();
        expect(`${restore.status} ${restoreText}`).toStartWith("200");
        await expectLeaderServesRestored(east[0]!, {
          present: "snap/x",
          items: { v: "east-before" },
          absent: "snap/new",
          index: (JSON.parse(restoreText) as { Index: number }).Index,
        });
        const restoredIndex = (JSON.parse(restoreText) as { Index: number }).Index;
        expect(restoredIndex).toBeGreaterThan(Number(before.headers.get("X-Edgenode-Index")));
        for (const s of east) {
          await waitFor(`${s.name} to hold the restored state`, 10_000, async () => {
            const x = await s.get<VarReply>("/v1/var/snap/x?stale");
            const n = await s.get("/v1/var/snap/new?stale");
            return x.status === 200 && x.body.Items.v === "east-before" && n.status === 404;
          });
        }
        expect((await g.get<VarReply>("/v1/var/snap/global-only")).body.Items).toEqual({ keep: "yes" });
        expect((await g.get("/v1/var/snap/x")).status).toBe(404);
      }),
    60_000,
  );

  test(
    "an unknown region is 400 listing the known ones",
    () =>
      both(async () => {
        for (const [method, path] of [
          ["GET", "/v1/var/x?region=nowhere"],
          ["PUT", "/v1/var/x?region=nowhere"],
          ["GET", "/v1/operator/snapshot?region=nowhere"],
          ["GET", "/v1/vars?region=nowhere"],
        ] as const) {
          const r = await g.http(method, path, method === "PUT" ? { Items: { a: "b" } } : undefined);
          expect(`${method} ${path}: ${r.status}`).toBe(`${method} ${path}: 400`);
          expect(r.text).toContain("nowhere");
          for (const known of ["east", "global", "west"]) expect(r.text).toContain(known);
        }
      }),
    20_000,
  );

  test(
    "a region that is down is 503 with a message naming it",
    () =>
      both(async () => {
        const cases: [string, string, string | Uint8Array | undefined][] = [
          ["GET", "/v1/var/x?region=west", undefined],
          ["PUT", "/v1/var/x?region=west", JSON.stringify({ Items: { a: "b" } })],
          ["GET", "/v1/operator/snapshot?region=west", undefined],
          ["PUT", "/v1/operator/snapshot?region=west", new Uint8Array(1024)],
        ];
        for (const [method, path, body] of cases) {
          const r = await fetch(`${g.url}${path}`, {
            method,
            ...(body !== undefined ? { body } : {}),
            signal: AbortSignal.timeout(20_000),
          });
          const text = await r.text();
          expect(`${method} ${path}: ${r.status}`).toBe(`${method} ${path}: 503`);
          expect(text).toContain("west");
        }
      }),
    60_000,
  );

  // Last: it kills an east server.
  test(
    "with one server of the other region down, forwarding (snapshots included) still reaches the region",
    () =>
      both(async () => {
        const eLeader = await leaderAmong(east);
        const victim = east.find((s) => s !== eLeader)!;
        await victim.kill();
        // Each forward picks a server of the region; every try must get through.
        for (let i = 0; i < 8; i++) {
          const r = await g.get<VarReply>("/v1/var/fed/a?region=east");
          expect(`var ${i}: ${r.status} ${r.status === 200 ? "" : r.text}`).toBe(`var ${i}: 200 `);
          const save = await fetch(`${g.url}/v1/operator/snapshot?region=east`, { signal: AbortSignal.timeout(20_000) });
          const text = save.status === 200 ? "" : await save.text();
          if (save.status === 200) await save.arrayBuffer();
          expect(`snapshot ${i}: ${save.status} ${text}`).toBe(`snapshot ${i}: 200 `);
        }
      }),
    60_000,
  );
});
