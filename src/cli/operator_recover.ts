// `node operator raft recover`: after quorum loss, on a stopped server, show what its log holds and
// rewrite its membership to the given servers (src/server/recovery.ts).
import { parsePeers, type RaftDirState, readRaftDir, recoverMembership } from "../server/recovery.ts";
import { CliError, type Command, str } from "./command.ts";
import { lockForCommand, OFFLINE_TARGET_FLAGS, offlineTarget } from "./offline_target.ts";
import { formatKv, formatTable } from "./table.ts";

const DOING = "recovering the Raft configuration";

function formatState(dataDir: string, s: RaftDirState): string {
  const kv = formatKv([
    ["Data directory", dataDir],
    ["Server ID", s.nodeId],
    ["Cluster ID", s.clusterId || "-"],
    ["Current term", String(s.term)],
    ["Last log index", `${s.lastIndex} (term ${s.lastTerm})`],
    ["Commit index", String(s.commitIndex)],
    ["Snapshot index", String(s.snapshotIndex)],
  ]);
  const peers = formatTable([["ID", "Address", "Voter"], ...s.config.servers.map((x) => [x.id, x.address, String(x.voter)])]);
  return `${kv}\n\nMembership (at index ${s.configIndex}):\n${peers}`;
}

export const raftRecoverCommand: Command = {
  path: ["operator", "raft", "recover"],
  synopsis: "Rewrite a stopped server's Raft membership after quorum loss (offline)",
  usage: "(-data-dir DIR | -config PATH) [-peers ID=HOST:PORT,...]",
  doing: DOING,
  flags: [
    ...OFFLINE_TARGET_FLAGS,
    {
      name: "peers",
      kind: "string",
      arg: "ID=HOST:PORT,...",
      help: "The servers of the recovered configuration, this one included. Without it, only shows the server's log and membership.",
    },
  ],
  async run(f, io) {
    if (f.args.length > 0) throw new CliError(`Error ${DOING}: unexpected arguments: ${f.args.join(" ")}`);
    const peersText = str(f, "peers");
    let peers;
    try {
      peers = f.set.has("peers") ? parsePeers(peersText) : undefined;
    } catch (e) {
      throw new CliError(`Error ${DOING}: ${(e as Error).message}`);
    }
    const { dataDir } = await offlineTarget(f, DOING);
    const lock = lockForCommand(dataDir, "raft recover", DOING, { create: false });
    const logAt = (level: string, msg: string) => {
      if (level === "warn" || level === "error") io.err(msg);
    };
    try {
      if (!peers) {
        io.out(
          `${formatState(dataDir, await readRaftDir(dataDir, logAt))}\n\nNothing changed: give -peers ID=HOST:PORT,... to rewrite the membership.`,
        );
        return 0;
      }
      const r = await recoverMembership(dataDir, peers, logAt);
      const uncommitted = r.before.lastIndex - r.before.commitIndex;
      io.out(
        [
          formatState(dataDir, r.before),
          "",
          `Recovered: the membership is now ${peers.map((p) => `${p.id} (${p.address})`).join(", ")},`,
          `written as a configuration entry at index ${r.index}, term ${r.term}; every entry and snapshot is kept.`,
          uncommitted > 0
            ? `The ${uncommitted} entries after the commit index (${r.before.commitIndex + 1}-${r.before.lastIndex}) are committed with it.`
            : "The log held no entries past its commit index.",
          "Warning: writes acknowledged only by the lost servers, which never reached this one, are gone.",
          peers.length > 1
            ? "Every other server named must be a survivor recovered with the same -peers. Where their logs differ, the one whose committed entries conflict stops at start: empty its data directory and have it join instead."
            : "Start the agent: it elects itself; new servers then join it with empty data directories.",
        ].join("\n"),
      );
      return 0;
    } catch (e) {
      throw new CliError(`Error ${DOING}: ${(e as Error).message}`);
    } finally {
      lock.release();
    }
  },
};
