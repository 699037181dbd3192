// Each server's raft progress as the server itself reports it (Status.RaftStats, server to server), and
// the cluster's table of them (Operator.RaftStats, GET /v1/operator/raft/stats): how far each server
// has committed and applied, and how far its state trails the leader's commit. The leader's own view
// (autopilot health) says what it replicated; only the server can say what it applied.
import { z } from "zod";
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError, hasCode } from "../lib/errors.ts";
import { ASK_TIMEOUT_MS, type AskHost, askEveryServer } from "./ask_servers.ts";
import { endpoint } from "./endpoints.ts";

/** The server-to-server method: one server's answer about itself. */
export const RAFT_STATS_RPC = "Status.RaftStats";

const index = z.number().int().nonnegative();

/** One server's answer about itself, checked when it comes from a peer. */
export const ownStatsSchema = z.object({
  ID: z.string().max(256),
  State: z.string().max(32),
  Term: index,
  LastIndex: index,
  CommitIndex: index,
  AppliedIndex: index,
  /** The cluster id in this server's stable store ("" before it joined one). */
  ClusterID: z.string().max(256),
  /** The leader this server follows, by ID ("" when none is known). */
  Leader: z.string().max(256),
});

export type OwnRaftStats = z.infer<typeof ownStatsSchema>;

/** A row of the table; the indexes are absent when the server did not answer, and `Error` says why. */
export interface ServerRaftStats {
  ID: string;
  Node: string;
  Address: string;
  State?: string;
  Term?: number;
  LastIndex?: number;
  CommitIndex?: number;
  AppliedIndex?: number;
  /** The leader's CommitIndex − this server's AppliedIndex; absent when either is unknown. */
  Lag?: number;
  Error?: string;
}

/** `GET /v1/operator/raft/stats`. */
export interface RaftStats {
  /** The answering server's cluster id. */
  ClusterID: string;
  /** The leader's ID as the answering server knows it, "" when none. */
  Leader: string;
  Servers: ServerRaftStats[];
}

/** What the stats need from the server. */
export interface RaftStatsHost extends AskHost {
  /** This server's answer about itself. */
  own(): OwnRaftStats;
}

/** Every server of the configuration asked at once, each within `timeoutMs`. */
export async function raftStats(h: RaftStatsHost, timeoutMs = ASK_TIMEOUT_MS): Promise<RaftStats> {
  const self = h.own();
  // The call's own timeout starts once a session is open; a dial to a server that stopped answering
  // must not hold the table longer than the others.
  const bounded: AskHost = {
    members: h.members,
    nodeId: () => h.nodeId(),
    call: async (address, method, args, opts) => {
      try {
        return await withDeadline(h.call(address, method, args, opts), timeoutMs, `${method}: no answer within ${timeoutMs} ms`);
      } catch (e) {
        // A server of an older release (in a rolling upgrade) answers, but does not know the question.
        if (hasCode(e, "NOT_FOUND") && String((e as Error).message).includes(`unknown rpc method ${method}`))
          throw new EdgeError("NOT_FOUND", `its release does not report raft stats (${method} unknown there)`);
        throw e;
      }
    },
  };
  const answers = await askEveryServer(bounded, RAFT_STATS_RPC, {}, ownStatsSchema, () => self, timeoutMs);
  const leaderCommit = answers.find((a) => a.ID === self.Leader)?.reply?.CommitIndex;
  const servers = answers.map((a): ServerRaftStats => {
    const who = { ID: a.ID, Node: a.Node, Address: a.Address };
    const r = a.reply;
    if (!r) return { ...who, Error: a.error ?? "no answer" };
    const row: ServerRaftStats = {
      ...who,
      State: r.State,
      Term: r.Term,
      LastIndex: r.LastIndex,
      CommitIndex: r.CommitIndex,
      AppliedIndex: r.AppliedIndex,
      // A server answering a little after the leader can be ahead of the commit it reported: no lag, not a negative one.
      ...(leaderCommit === undefined ? {} : { Lag: Math.max(0, leaderCommit - r.AppliedIndex) }),
    };
    // An address taken over by another server, or a server of another cluster, is not this row's server.
    if (r.ID !== a.ID) row.Error = `the server at ${a.Address} is ${r.ID}, not ${a.ID}`;
    else if (r.ClusterID !== self.ClusterID) row.Error = `holds cluster id ${r.ClusterID || "(none)"}, not ${self.ClusterID}`;
    return row;
  });
  return { ClusterID: self.ClusterID, Leader: self.Leader, Servers: servers };
}

export function raftStatsEndpoints(h: RaftStatsHost) {
  return {
    // A read: forwarded to the leader (whose commit is the newest) unless ?stale lets any server answer.
    "Operator.RaftStats": endpoint({ kind: "read", args: z.object({}), handler: async () => ({ reply: await raftStats(h) }) }),
  };
}
