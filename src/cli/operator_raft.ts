// `node operator raft list-peers|remove-peer|transfer-leadership`: the Raft configuration.
import { raftConfiguration, removePeer, transferLeadership, type RaftServer } from "../api/operator.ts";
import { clientFromFlags, withClientFlags } from "./client_flags.ts";
import { bool, CliError, str, type Command } from "./command.ts";
import { formatTable } from "./table.ts";

export function formatPeers(servers: RaftServer[]): string {
  return formatTable([
    ["Node", "ID", "Address", "State", "Voter"],
    ...servers.map((s) => [s.Node, s.ID, s.Address, s.Leader ? "leader" : "follower", String(s.Voter)]),
  ]);
}

const noArgs = (args: string[], doing: string) => {
  if (args.length > 0) throw new CliError(`Error ${doing}: unexpected arguments: ${args.join(" ")}`);
};

export const raftListPeersCommand: Command = {
  path: ["operator", "raft", "list-peers"],
  synopsis: "List the servers in the Raft configuration",
  usage: "[options]",
  doing: "listing the Raft peers",
  flags: withClientFlags([{ name: "stale", kind: "bool", help: "Let any server answer from its own state." }]),
  async run(f, io) {
    noArgs(f.args, "listing the Raft peers");
    const c = await clientFromFlags(f);
    const { config } = await raftConfiguration(c, { stale: bool(f, "stale") });
    io.out(formatPeers(config.Servers));
    return 0;
  },
};

export const raftRemovePeerCommand: Command = {
  path: ["operator", "raft", "remove-peer"],
  synopsis: "Remove a server from the Raft configuration",
  usage: "[options] -peer-id ID",
  doing: "removing the peer",
  flags: withClientFlags([{ name: "peer-id", kind: "string", arg: "ID", help: "The ID of the server to remove (required)." }]),
  async run(f, io) {
    noArgs(f.args, "removing the peer");
    const id = str(f, "peer-id");
    if (!id) throw new CliError("Error removing the peer: -peer-id is required");
    const c = await clientFromFlags(f);
    await removePeer(c, id);
    io.out(`Removed peer with ID "${id}"`);
    return 0;
  },
};

export const raftTransferLeadershipCommand: Command = {
  path: ["operator", "raft", "transfer-leadership"],
  synopsis: "Hand Raft leadership to another voter",
  usage: "[options] [-peer-id ID]",
  doing: "transferring leadership",
  flags: withClientFlags([
    { name: "peer-id", kind: "string", arg: "ID", help: "The voter to hand leadership to. Default: the server picks one." },
  ]),
  async run(f, io) {
    noArgs(f.args, "transferring leadership");
    const c = await clientFromFlags(f);
    const to = await transferLeadership(c, str(f, "peer-id") || undefined);
    io.out(to ? `Transferred leadership to "${to}"` : "Transferred leadership");
    return 0;
  },
};
