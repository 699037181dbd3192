// Bad snapshot uploads on three compiled servers: each is refused with 400 and a reason, and nothing
// changes — the state, the leader's readiness for the next restore, and no staged files left behind.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { encodePreamble, FORMAT_VERSION, PREAMBLE_BYTES, TRAILER_BYTES } from "../../src/snapshot/format.ts";
import { type Cluster, type ClusterServer, useCluster, waitFor, withLogs } from "./harness.ts";
import { expectLeaderServesRestored, fullState, restoreBytes, restoreFile, startClusterIn, writeVarsSnapshot } from "./snapshot_cluster.ts";

let good: Uint8Array;
let goodPath: string;
let before: string;

const cluster = useCluster("snap-bad", { start: startClusterWithState });

async function startClusterWithState(c: Cluster): Promise<void> {
  await startClusterIn(c);
  const leader = await c.waitForLeader();
  for (let i = 0; i < 20; i++) await leader.putVar(`old/k${i}`, { v: String(i) });
  goodPath = join(c.dir, "good.snap");
  await writeVarsSnapshot(goodPath, "new", 300, 1000);
  good = new Uint8Array(readFileSync(goodPath));
}

function stagedLeftovers(): string[] {
  const out: string[] = [];
  for (const s of cluster.servers) {
    const d = join(s.dataDir, "staged");
    if (existsSync(d)) out.push(...readdirSync(d).map((n) => `${s.name}/${n}`));
  }
  return out;
}

/** The refusal leaves every server on the old state, nothing staged, and the leader still takes restores. */
async function expectUnchanged(): Promise<void> {
  const leader = await cluster.waitForLeader();
  for (const s of cluster.servers) await waitFor(`${s.name} on the old state`, 10_000, async () => (await fullState(s)) === before);
  await waitFor("no staged or spooled files left", 10_000, () => stagedLeftovers().length === 0);
  // A stuck restore slot would answer 409 here; give the aborted stream's teardown a deadline.
  await waitFor("the leader to take a dry-run restore", 15_000, async () => (await restoreBytes(leader, good, "?dry-run")).status === 200);
}

function withTrailer(bytes: Uint8Array): Uint8Array {
  const body = bytes.subarray(0, bytes.length - TRAILER_BYTES);
  const out = new Uint8Array(bytes.length);
  out.set(body);
  out.set(createHash("sha256").update(body).digest(), body.length);
  return out;
}

async function expect400(via: ClusterServer, bytes: Uint8Array, what: string, reason?: RegExp): Promise<void> {
  const r = await restoreBytes(via, bytes);
  if (r.status !== 400) throw new Error(`${what}: expected 400, got ${r.status} ${r.text}`);
  expect(r.text.length).toBeGreaterThan(0);
  if (reason) expect(r.text).toMatch(reason);
}

describe("bad snapshot uploads are refused with 400 and change nothing", () => {
  test(
    "a flipped byte at several positions",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        before = await fullState(leader);
        const via = cluster.followers(leader)[0]!;
        const n = good.length;
        const positions = [
          0,
          5,
          9,
          14,
          PREAMBLE_BYTES + 3,
          PREAMBLE_BYTES + 30,
          Math.floor(n / 3),
          Math.floor(n / 2),
          n - TRAILER_BYTES - 40,
          n - TRAILER_BYTES - 1,
          n - 10,
          n - 1,
        ];
        for (const at of positions) {
          const bad = good.slice();
          bad[at] = bad[at]! ^ 0x5a;
          await expect400(via, bad, `byte ${at} of ${n} flipped`);
        }
        await expectUnchanged();
      }),
    60_000,
  );

  test(
    "a flaw near the start of a large upload gets its 400 and reason while the client still sends",
    () =>
      withLogs(cluster, async () => {
        // The leader verifies as the upload arrives, so it refuses this file with most of it still to
        // come: curl -T and a streamed fetch must still see the 400 and its reason, not a reset.
        const leader = await cluster.waitForLeader();
        before = await fullState(leader);
        const [f1, f2] = cluster.followers(leader) as [ClusterServer, ClusterServer];
        const bigPath = join(cluster.dir, "big-flawed.snap");
        await writeVarsSnapshot(bigPath, "big", 20_000, 1000);
        const big = new Uint8Array(readFileSync(bigPath));
        expect(big.length).toBeGreaterThan(10_000_000);
        big[PREAMBLE_BYTES + 30] = big[PREAMBLE_BYTES + 30]! ^ 0x5a;
        writeFileSync(bigPath, big);
        const r = await restoreFile(f1, bigPath);
        expect(r.status).toBe(400);
        expect(r.text).toMatch(/invalid snapshot/);
        const curl = Bun.spawn(["curl", "-sS", "-T", bigPath, "-w", "\n%{http_code}", `${f2.url}/v1/operator/snapshot`], {
          stdout: "pipe",
          stderr: "pipe",
        });
        const [out, err] = [await new Response(curl.stdout).text(), await new Response(curl.stderr).text()];
        expect(await curl.exited).toBe(0);
        expect(err).toBe("");
        expect(out.trim().split("\n").at(-1)).toBe("400");
        expect(out).toMatch(/invalid snapshot/);
        await expectUnchanged();
      }),
    60_000,
  );

  test(
    "truncated, extra bytes appended, empty",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        before = await fullState(leader);
        const via = cluster.followers(leader)[1]!;
        await expect400(via, good.slice(0, Math.floor(good.length / 2)), "half the file");
        await expect400(via, good.slice(0, good.length - 1), "one byte short");
        await expect400(via, good.slice(0, PREAMBLE_BYTES), "the preamble only");
        const extra = new Uint8Array(good.length + 7);
        extra.set(good);
        extra.set([1, 2, 3, 4, 5, 6, 7], good.length);
        await expect400(via, extra, "7 bytes appended");
        await expect400(via, new Uint8Array(0), "an empty body");
        await expectUnchanged();
      }),
    60_000,
  );

  test(
    "a newer format version (valid CRC and SHA-256) is refused with a reason that says so",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        before = await fullState(leader);
        const newer = good.slice();
        newer.set(encodePreamble(FORMAT_VERSION + 1), 0);
        await expect400(cluster.followers(leader)[0]!, withTrailer(newer), "format version + 1", /newer/);
        await expect400(leader, withTrailer(newer), "format version + 1 on the leader", /newer/);
        await expectUnchanged();
      }),
    60_000,
  );

  test(
    "files that are not snapshots",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        before = await fullState(leader);
        const via = cluster.followers(leader)[0]!;
        await expect400(via, new TextEncoder().encode(JSON.stringify({ Items: { a: "b" } })), "JSON");
        const noise = new Uint8Array(200_000);
        crypto.getRandomValues(noise.subarray(0, 65536));
        crypto.getRandomValues(noise.subarray(65536, 131072));
        await expect400(via, noise, "random bytes");
        await expect400(via, new Uint8Array(readFileSync(cluster.servers[0]!.configPath)), "an HCL config");
        await expectUnchanged();
      }),
    60_000,
  );

  test(
    "an upload cut off by the client (aborted fetch, killed curl -T) changes nothing and frees the restore slot",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader();
        before = await fullState(leader);
        const [f1, f2] = cluster.followers(leader) as [ClusterServer, ClusterServer];

        // fetch: half the file, then the client aborts.
        const ac = new AbortController();
        let sent = 0;
        const half = Math.floor(good.length / 2);
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (sent >= half) {
              ac.abort();
              return;
            }
            const chunk = good.subarray(sent, Math.min(half, sent + 16384));
            sent += chunk.length;
            c.enqueue(chunk);
            await Bun.sleep(5);
          },
        });
        const r = fetch(`${f1.url}/v1/operator/snapshot`, { method: "PUT", body, signal: ac.signal, duplex: "half" } as RequestInit).then(
          (x) => x.status,
          (e: Error) => e.name,
        );
        expect(await r).toBe("AbortError");
        await expectUnchanged();

        // The whole valid file sent, but the chunked body never terminated before the client aborted:
        // a cut connection is not an end of file, so nothing may be restored.
        const ac2 = new AbortController();
        let pushed = false;
        const whole = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (pushed) return new Promise<void>(() => {});
            pushed = true;
            c.enqueue(good);
          },
        });
        const r2 = fetch(`${f1.url}/v1/operator/snapshot`, {
          method: "PUT",
          body: whole,
          signal: ac2.signal,
          duplex: "half",
        } as RequestInit).then(
          (x) => x.status,
          (e: Error) => e.name,
        );
        await waitFor(
          "the leader to have spooled the whole file",
          10_000,
          () =>
            readdirSync(join(leader.dataDir, "staged")).some(
              (n) => n.startsWith("upload-") && Bun.file(join(leader.dataDir, "staged", n)).size >= good.length,
            ) || undefined,
          5,
        );
        ac2.abort();
        expect(await r2).toBe("AbortError");
        await expectUnchanged();

        // curl -T on a throttled upload, SIGKILLed mid-stream.
        const big = join(cluster.dir, "big.snap");
        writeFileSync(big, good);
        const curl = Bun.spawn(["curl", "-sS", "-T", big, "--limit-rate", "50k", `${f2.url}/v1/operator/snapshot`], {
          stdout: "pipe",
          stderr: "pipe",
        });
        await waitFor("the upload to be under way", 10_000, () =>
          readdirSync(join(leader.dataDir, "staged")).some((n) => n.startsWith("upload-")),
        );
        curl.kill("SIGKILL");
        await curl.exited;

        await expectUnchanged();
        // And a real restore still goes through afterwards.
        const ok = await restoreFile(f2, goodPath);
        expect(ok.status).toBe(200);
        await expectLeaderServesRestored(leader, {
          present: "marker/state",
          items: { tag: "new" },
          absent: "old/k0",
          index: (ok.body as { Index: number }).Index,
        });
        for (const s of cluster.servers)
          await waitFor(`${s.name} on the new state`, 20_000, async () => (await fullState(s)).includes('"new/k299"'));
      }),
    90_000,
  );
});
