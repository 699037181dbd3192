// Agent and status calls: the answering server's self description, the leader, the voters.
import { type ApiClient, ApiError, type QueryOptions } from "./client.ts";

export interface RaftStats {
  state: string;
  term: number;
  commit_index: number;
  applied_index: number;
  last_log_index: number;
  leader: string;
  leader_id: string;
  num_peers: number;
  last_snapshot_index: number;
  last_contact_ms: number;
}

export interface AgentSelf {
  Name: string;
  ID: string;
  Region: string;
  Datacenter?: string;
  Version: string;
  /** The newest log-entry, snapshot and RPC formats the agent reads (absent before 0.2.0). */
  Formats?: { Log: number; Snapshot: number; Rpc: number };
  /** The committed cluster version as the agent applied it (absent before 0.2.0). */
  ClusterVersion?: string;
  Stats?: { raft?: Partial<RaftStats> };
}

export async function agentSelf(c: ApiClient, q?: QueryOptions): Promise<AgentSelf> {
  const r = await c.json<AgentSelf>({ method: "GET", path: "/v1/agent/self", query: q });
  if (!r.body || typeof r.body.Name !== "string") throw new ApiError(r.status, "invalid response to GET /v1/agent/self: no Name");
  return r.body;
}
