// `node operator raft list-peers|stats|remove-peer|transfer-leadership`: the Raft configuration and
// each server's raft progress.
import { raftConfiguration, raftStats, removePeer, transferLeadership, type RaftServer, type RaftStats } from "../api/operator.ts";
import { bool, CliError, str } from "./command.ts";
import { simpleCommand } from "./simple_command.ts";
import { formatTable } from "./table.ts";

export function formatPeers(servers: RaftServer[]): string {
  return formatTable([
    ["Node", "ID", "Address", "State", "Voter"],
    ...servers.map((s) => [s.Node, s.ID, s.Address, s.Leader ? "leader" : "follower", String(s.Voter)]),
  ]);
}

export const raftListPeersCommand = simpleCommand({
  path: ["operator", "raft", "list-peers"],
  synopsis: "List the servers in the Raft configuration",
  usage: "[options]",
  doing: "listing the Raft peers",
  flags: [{ name: "stale", kind: "bool", help: "Let any server answer from its own state." }],
  args: "none",
  async run(f, _, client) {
    const { config } = await raftConfiguration(await client(), { stale: bool(f, "stale") });
    return formatPeers(config.Servers);
  },
});

export function formatStats(st: RaftStats): string {
  const n = (v: number | undefined) => (v === undefined ? "-" : String(v));
  const table = formatTable([
    ["Node", "ID", "Address", "State", "Term", "LastIndex", "CommitIndex", "AppliedIndex", "Lag", "Error"],
    ...st.Servers.map((s) => [
      s.Node,
      s.ID,
      s.Address,
      s.State ?? "-",
      n(s.Term),
      n(s.LastIndex),
      n(s.CommitIndex),
      n(s.AppliedIndex),
      n(s.Lag),
      s.Error ?? "",
    ]),
  ]);
  return `Cluster ID: ${st.ClusterID || "-"}\nLeader: ${st.Leader || "-"}\n\n${table}`;
}

export const raftStatsCommand = simpleCommand({
  path: ["operator", "raft", "stats"],
  synopsis: "Show each server's term, commit and applied index, and lag behind the leader's commit",
  usage: "[options]",
  doing: "reading the raft stats",
  flags: [{ name: "stale", kind: "bool", help: "Let any server answer (it asks every server itself)." }],
  args: "none",
  async run(f, _, client) {
    return formatStats(await raftStats(await client(), { stale: bool(f, "stale") }));
  },
});

export const raftRemovePeerCommand = simpleCommand({
  path: ["operator", "raft", "remove-peer"],
  synopsis: "Remove a server from the Raft configuration",
  usage: "[options] -peer-id ID",
  doing: "removing the peer",
  flags: [{ name: "peer-id", kind: "string", arg: "ID", help: "The ID of the server to remove (required)." }],
  args: "none",
  check(f) {
    const id = str(f, "peer-id");
    if (!id) throw new CliError("Error removing the peer: -peer-id is required");
    return id;
  },
  async run(_, id, client) {
    await removePeer(await client(), id);
    return `Removed peer with ID "${id}"`;
  },
});

export const raftTransferLeadershipCommand = simpleCommand({
  path: ["operator", "raft", "transfer-leadership"],
  synopsis: "Hand Raft leadership to another voter",
  usage: "[options] [-peer-id ID]",
  doing: "transferring leadership",
  flags: [{ name: "peer-id", kind: "string", arg: "ID", help: "The voter to hand leadership to. Default: the server picks one." }],
  args: "none",
  async run(f, _, client) {
    const to = await transferLeadership(await client(), str(f, "peer-id") || undefined);
    return to ? `Transferred leadership to "${to}"` : "Transferred leadership";
  },
});
