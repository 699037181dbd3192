// README: "curl -o backup.snap …/v1/operator/snapshot" saves and "curl -T backup.snap …" restores,
// both through any server. Real curl processes against a follower of a three-server cluster: the
// saved file matches its Digest, the state is then changed, the file is uploaded,
// and the 200's index is followed by the saved state on a linearizable read at once and on every
// server's own view soon after.
import { beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "../support/tools.ts";
import { type ClusterServer, useCluster, waitFor, withLogs } from "./harness.ts";
import { getItems, startClusterIn } from "./snapshot_cluster.ts";

let curl = "";

beforeAll(() => {
  curl = requireTool("curl", "curl");
});

const cluster = useCluster("curl", { start: (c) => startClusterIn(c), timeoutMs: 90_000 });

/** Runs curl with `args`; resolves its stdout, throwing with stderr unless it exits 0. */
async function runCurl(args: string[]): Promise<string> {
  const p = Bun.spawn([curl, "-sS", ...args], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`curl ${args.join(" ")} exited ${code}: ${err}`);
  return out;
}

/** Items of `path` read through `s` linearizably (no ?stale); undefined on 404. */
async function readItems(s: ClusterServer, path: string): Promise<Record<string, string> | undefined> {
  const r = await s.get<{ Items: Record<string, string> }>(`/v1/var/${path}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET ${path} on ${s.name}: ${r.status} ${r.text}`);
  return r.body.Items;
}

test("curl -o saves through a follower, curl -T restores that file through a follower", async () => {
  await withLogs(cluster, async () => {
    const leader = await cluster.waitForLeader(10_000);
    const follower = cluster.followers(leader)[0]!;
    await leader.putVar("app/a", { v: "1" });
    await leader.putVar("app/b", { v: "2" });

    const file = join(cluster.dir, "backup.snap");
    const headersFile = join(cluster.dir, "backup.headers");
    await runCurl(["-f", "-o", file, "-D", headersFile, `${follower.url}/v1/operator/snapshot`]);
    const headers = new Map(
      readFileSync(headersFile, "utf8")
        .split("\r\n")
        .map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as const),
    );
    expect(statSync(file).size).toBeGreaterThan(0);
    expect(Number(headers.get("x-edgenode-index"))).toBeGreaterThan(0);
    expect(headers.get("digest")).toBe(`sha-256=${createHash("sha256").update(readFileSync(file)).digest("base64")}`);

    // Change the state the file does not hold.
    await leader.putVar("app/a", { v: "changed" });
    expect((await leader.http("DELETE", "/v1/var/app/b")).status).toBe(200);
    await leader.putVar("app/c", { v: "new" });

    const out = await runCurl(["-T", file, "-w", "\n%{http_code}", `${follower.url}/v1/operator/snapshot`]);
    const [body, code] = [out.slice(0, out.lastIndexOf("\n")), out.slice(out.lastIndexOf("\n") + 1)];
    expect(code).toBe("200");
    expect((JSON.parse(body) as { Index: number }).Index).toBeGreaterThan(0);

    // A 200 means the leader serves the new state: linearizable reads see it at once.
    for (const s of [follower, leader]) {
      expect(await readItems(s, "app/a")).toEqual({ v: "1" });
      expect(await readItems(s, "app/b")).toEqual({ v: "2" });
      expect(await readItems(s, "app/c")).toBeUndefined();
    }
    // Every server's own view follows.
    for (const s of cluster.servers) {
      await waitFor(`${s.name} to serve the restored state locally`, 30_000, async () => {
        const got = await Promise.all([getItems(s, "app/a"), getItems(s, "app/b"), getItems(s, "app/c")]).catch(() => undefined);
        return got !== undefined && got[0]?.v === "1" && got[1]?.v === "2" && got[2] === undefined;
      });
    }
  });
}, 120_000);
