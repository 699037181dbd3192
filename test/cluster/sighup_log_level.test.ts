// README: "SIGHUP reloads `log_level`". One server of a three-server cluster has its config file's
// log_level edited and gets SIGHUP; leadership transfers make every server log a DEBUG line
// ("server: leader: ... term=N"). At DEBUG the server writes it; back at INFO it does not (the
// transfer's term is skipped), and at DEBUG again it writes the next one.
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { waitFor, withLogs, type ClusterServer, useCluster } from "./harness.ts";

const cluster = useCluster("sighup", { leaderMs: 20_000 });

/** Terms of the DEBUG "leader" lines in `s`'s log. */
function debugLeaderTerms(s: ClusterServer): number[] {
  return [...s.log().matchAll(/\[DEBUG\] server: leader: .*\bterm=(\d+)/g)].map((m) => Number(m[1]));
}

/** Rewrites `s`'s log_level, sends SIGHUP, and waits for the reload to be logged `n` times in all. */
async function reload(s: ClusterServer, level: "DEBUG" | "INFO", n: number): Promise<void> {
  const text = readFileSync(s.configPath, "utf8");
  writeFileSync(s.configPath, text.replace(/^log_level = ".*"$/m, `log_level = "${level}"`));
  s.proc!.kill("SIGHUP");
  await waitFor(
    `${s.name} to reload log_level ${level}`,
    10_000,
    () => s.log().split(`reloaded log level: level=${level}`).length - 1 >= n,
  );
}

/** Transfers leadership and waits until `s` names the new leader at a higher term; returns that term. */
async function transfer(s: ClusterServer): Promise<number> {
  const before = Number((await s.raftStats()).term);
  const leader = await cluster.waitForLeader(10_000);
  const r = await leader.put("/v1/operator/raft/transfer-leadership");
  expect(r.status).toBe(200);
  const term = await waitFor(`${s.name} to see a leader at a term above ${before}`, 15_000, async () => {
    const st = await s.raftStats().catch(() => undefined);
    return st && Number(st.term) > before && st.leader ? Number(st.term) : undefined;
  });
  await cluster.waitForLeader(10_000);
  return term;
}

test("SIGHUP applies an edited log_level: DEBUG lines appear, stop, and appear again", async () => {
  await withLogs(cluster, async () => {
    const s = cluster.servers[0]!;
    expect(s.log()).not.toContain("[DEBUG]");

    await reload(s, "DEBUG", 1);
    const t1 = await transfer(s);
    await waitFor(`${s.name} to log the leader of term ${t1} at DEBUG`, 10_000, () => debugLeaderTerms(s).includes(t1));

    await reload(s, "INFO", 1);
    const quietFrom = s.log().length;
    const t2 = await transfer(s);
    // A write through this server: it has handled the new leader before DEBUG is back on.
    await s.putVar("sighup/barrier", { t: String(t2) });

    await reload(s, "DEBUG", 2);
    const t3 = await transfer(s);
    await waitFor(`${s.name} to log the leader of term ${t3} at DEBUG`, 10_000, () => debugLeaderTerms(s).includes(t3));

    const terms = debugLeaderTerms(s);
    expect(terms).toContain(t1);
    expect(terms).not.toContain(t2);
    expect(terms).toContain(t3);
    // Nothing at DEBUG between the INFO reload and the second DEBUG reload.
    const quiet = s.log().slice(quietFrom);
    expect(quiet.slice(0, quiet.indexOf("reloaded log level: level=DEBUG"))).not.toContain("[DEBUG]");
  });
}, 120_000);
