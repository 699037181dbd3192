// `node server members` and `node status`: the servers of the cluster and an overview of its state,
// from the Raft configuration and the answering agent's own description.
import { agentSelf, type AgentSelf } from "../api/agent.ts";
import { raftConfiguration, type RaftConfiguration } from "../api/operator.ts";
import { clientFromFlags, withClientFlags } from "./client_flags.ts";
import { bool, CliError, type Command } from "./command.ts";
import { formatKv, formatTable } from "./table.ts";

const staleFlag = { name: "stale", kind: "bool" as const, help: "Let any server answer from its own state." };

/**
 * Status is the server's Raft membership (voter or nonvoter): edgenode has no gossip layer, so it
 * cannot tell a live follower from a dead one the way Nomad's serf-based `alive`/`failed` does.
 */
export function formatMembers(cfg: RaftConfiguration, region: string): string {
  return formatTable([
    ["Name", "ID", "Address", "Status", "Leader", "Region"],
    ...cfg.Servers.map((s) => [s.Node, s.ID, s.Address, s.Voter ? "voter" : "nonvoter", String(s.Leader), region]),
  ]);
}

export const serverMembersCommand: Command = {
  path: ["server", "members"],
  synopsis: "List the servers of the cluster",
  usage: "[options]",
  doing: "listing the servers",
  flags: withClientFlags([staleFlag]),
  async run(f, io) {
    if (f.args.length > 0) throw new CliError(`Error listing the servers: unexpected arguments: ${f.args.join(" ")}`);
    const c = await clientFromFlags(f);
    const [{ config }, self] = await Promise.all([raftConfiguration(c, { stale: bool(f, "stale") }), agentSelf(c)]);
    io.out(formatMembers(config, c.region ?? self.Region));
    return 0;
  },
};

export function formatStatus(cfg: RaftConfiguration, self: AgentSelf, region = self.Region): string {
  const leader = cfg.Servers.find((s) => s.Leader);
  const raft = self.Stats?.raft ?? {};
  const n = (v: number | undefined) => (v === undefined ? "-" : String(v));
  const overview = formatKv([
    ["Region", region],
    ["Leader", leader ? `${leader.Node} (${leader.Address})` : "none"],
    ["Servers", `${cfg.Servers.length} (${cfg.Servers.filter((s) => s.Voter).length} voters)`],
    ["Configuration Index", String(cfg.Index)],
    ["Agent", `${self.Name} (${raft.state ?? "unknown"}), version ${self.Version}`],
    ["Term", n(raft.term)],
    ["Commit Index", n(raft.commit_index)],
    ["Applied Index", n(raft.applied_index)],
    ["Last Log Index", n(raft.last_log_index)],
    ["Last Snapshot Index", n(raft.last_snapshot_index)],
  ]);
  const servers = formatTable([
    ["Name", "ID", "Address", "State", "Voter"],
    ...cfg.Servers.map((s) => [s.Node, s.ID, s.Address, s.Leader ? "leader" : "follower", String(s.Voter)]),
  ]);
  return `${overview}\n\n${servers}`;
}

export const statusCommand: Command = {
  path: ["status"],
  synopsis: "Overview of the cluster: servers, leader, raft indexes, region",
  usage: "[options]",
  doing: "reading the cluster status",
  flags: withClientFlags([staleFlag]),
  async run(f, io) {
    if (f.args.length > 0) throw new CliError(`Error reading the cluster status: unexpected arguments: ${f.args.join(" ")}`);
    const c = await clientFromFlags(f);
    const [{ config }, self] = await Promise.all([raftConfiguration(c, { stale: bool(f, "stale") }), agentSelf(c)]);
    io.out(formatStatus(config, self, c.region ?? self.Region));
    return 0;
  },
};
