// `node server members` and `node status`: the servers of the cluster and an overview of its state,
// from the Raft configuration and the answering agent's own description.
import { agentSelf, type AgentSelf } from "../api/agent.ts";
import { raftConfiguration, type RaftConfiguration } from "../api/operator.ts";
import { bool } from "./command.ts";
import { simpleCommand } from "./simple_command.ts";
import { formatKv, formatTable } from "./table.ts";

const staleFlag = { name: "stale", kind: "bool" as const, help: "Let any server answer from its own state." };

/**
 * Status is the server's Raft membership (voter or nonvoter): edgenode has no gossip layer, so it
 * cannot tell a live follower from a dead one the way Nomad's serf-based `alive`/`failed` does. Build
 * is the release the server runs (Nomad's column), "unknown" when it did not answer the leader. A server
 * whose apply stopped at an entry it does not understand says so in Status, with the index and what it needs.
 */
export function formatMembers(cfg: RaftConfiguration, region: string): string {
  return formatTable([
    ["Name", "ID", "Address", "Status", "Leader", "Build", "Region"],
    ...cfg.Servers.map((s) => [
      s.Node,
      s.ID,
      s.Address,
      `${s.Voter ? "voter" : "nonvoter"}${s.ApplyStopped ? ` (apply stopped at ${s.ApplyStopped.Index}: needs ${s.ApplyStopped.Needs})` : ""}`,
      String(s.Leader),
      s.Version || "unknown",
      region,
    ]),
  ]);
}

export const serverMembersCommand = simpleCommand({
  path: ["server", "members"],
  synopsis: "List the servers of the cluster",
  usage: "[options]",
  doing: "listing the servers",
  flags: [staleFlag],
  args: "none",
  async run(f, _, client) {
    const c = await client();
    const [{ config }, self] = await Promise.all([raftConfiguration(c, { stale: bool(f, "stale") }), agentSelf(c)]);
    return formatMembers(config, c.region ?? self.Region);
  },
});

/** `ui`: the status page of the agent answering (its address + /ui/), shown as a row when given. */
export function formatStatus(cfg: RaftConfiguration, self: AgentSelf, region = self.Region, ui?: string): string {
  const leader = cfg.Servers.find((s) => s.Leader);
  const raft = self.Stats?.raft ?? {};
  const n = (v: number | undefined) => (v === undefined ? "-" : String(v));
  const overview = formatKv([
    ["Region", region],
    ["Leader", leader ? `${leader.Node} (${leader.Address})` : "none"],
    ["Servers", `${cfg.Servers.length} (${cfg.Servers.filter((s) => s.Voter).length} voters)`],
    ["Configuration Index", String(cfg.Index)],
    ["Agent", `${self.Name} (${raft.state ?? "unknown"}), version ${self.Version}`],
    ["Cluster Version", cfg.ClusterVersion ?? "unknown"],
    ["Term", n(raft.term)],
    ["Commit Index", n(raft.commit_index)],
    ["Applied Index", n(raft.applied_index)],
    ["Last Log Index", n(raft.last_log_index)],
    ["Last Snapshot Index", n(raft.last_snapshot_index)],
    ...(ui ? [["Status Page", ui] as [string, string]] : []),
  ]);
  const servers = formatTable([
    ["Name", "ID", "Address", "State", "Voter"],
    ...cfg.Servers.map((s) => [s.Node, s.ID, s.Address, s.Leader ? "leader" : "follower", String(s.Voter)]),
  ]);
  return `${overview}\n\n${servers}`;
}

export const statusCommand = simpleCommand({
  path: ["status"],
  synopsis: "Overview of the cluster: servers, leader, raft indexes, region",
  usage: "[options]",
  doing: "reading the cluster status",
  flags: [staleFlag],
  args: "none",
  async run(f, _, client) {
    const c = await client();
    const [{ config }, self] = await Promise.all([raftConfiguration(c, { stale: bool(f, "stale") }), agentSelf(c)]);
    return formatStatus(config, self, c.region ?? self.Region, `${c.address.replace(/\/+$/, "")}/ui/`);
  },
});
