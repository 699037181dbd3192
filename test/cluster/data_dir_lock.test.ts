// One agent per data directory (issue #25 item 4): the agent takes an advisory lock on its data
// directory at start; a second agent, and the offline commands, are refused with the holder's PID; the
// kernel drops the lock when the holder dies, so after a SIGKILL a new agent starts normally.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ClusterServer, freePort, hcl, useCluster, withLogs } from "./harness.ts";

let s: ClusterServer;

const cluster = useCluster("dirlock", {
  start: async (c) => {
    await c.init();
    s = c.add({ bootstrapExpect: 1 });
    s.start();
    await s.waitHttp();
    await c.waitForLeader(20_000);
  },
  timeoutMs: 120_000,
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([cluster.binaryPath, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/** Every file under `dir` with its size and mtime: what "changes nothing" is checked against. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p);
        out.push(`${p} ${st.size} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

test("a second agent on a data directory in use refuses to start and names the holder's PID", async () => {
  await withLogs(cluster, async () => {
    const pid = s.proc?.pid;
    expect(pid).toBeGreaterThan(0);
    // Same data_dir, other ports: what stops it is the lock, not a port in use.
    const second = join(cluster.dir, "second.hcl");
    writeFileSync(
      second,
      hcl("second", s.dataDir, { http: freePort(), rpc: freePort() }, [], { bootstrapExpect: 1, encrypt: [cluster.key] }),
    );
    const r = await run(["agent", "-config", second]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`data directory ${s.dataDir} is in use by another process (PID ${pid}, agent)`);
    // The holder's PID is still in the lock file, and the first agent still serves.
    expect(readFileSync(join(s.dataDir, "agent.lock"), "utf8")).toBe(`${pid} agent\n`);
    await s.putVar("lock/first", { still: "serving" });
  });
}, 60_000);

test("the offline commands refuse a directory an agent holds, and change nothing", async () => {
  await withLogs(cluster, async () => {
    const pid = s.proc?.pid;
    const before = listing(s.dataDir).filter((l) => !l.includes("/raft/") && !l.includes("/snapshots/"));
    const recover = await run(["operator", "raft", "recover", "-config", s.configPath, "-peers", "x=127.0.0.1:1"]);
    expect(recover.code).toBe(1);
    expect(recover.err).toContain(
      `Error recovering the Raft configuration: data directory ${s.dataDir} is in use by another process (PID ${pid}, agent)`,
    );
    const file = join(cluster.dir, "none.snap");
    writeFileSync(file, "not a snapshot");
    const restore = await run(["operator", "snapshot", "restore", "-offline", "-config", s.configPath, file]);
    expect(restore.code).toBe(1);
    expect(restore.err).toContain(`in use by another process (PID ${pid}, agent)`);
    expect(readFileSync(join(s.dataDir, "agent.lock"), "utf8")).toBe(`${pid} agent\n`);
    expect(listing(s.dataDir).filter((l) => !l.includes("/raft/") && !l.includes("/snapshots/"))).toEqual(before);
  });
}, 60_000);

test("after a SIGKILL of the holder, a new agent starts normally on the directory", async () => {
  await withLogs(cluster, async () => {
    const old = s.proc?.pid;
    await s.kill();
    // The dead holder's file is still there: only the kernel's lock counted, and it went with the process.
    expect(readFileSync(join(s.dataDir, "agent.lock"), "utf8")).toBe(`${old} agent\n`);
    s.start();
    await s.waitHttp();
    await cluster.waitForLeader(20_000);
    expect(readFileSync(join(s.dataDir, "agent.lock"), "utf8")).toBe(`${s.proc?.pid} agent\n`);
    const r = await s.get<{ Items: Record<string, string> }>("/v1/var/lock/first");
    expect(r.status).toBe(200);
    expect(r.body.Items).toEqual({ still: "serving" });
  });
}, 60_000);
