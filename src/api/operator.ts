// Raft operator calls: the configuration, each server's raft progress, removing a peer, transferring leadership.
import type { RaftStats } from "../server/raft_stats.ts";
import { type ApiClient, ApiError, type QueryMeta, type QueryOptions } from "./client.ts";

export interface RaftServer {
  ID: string;
  Node: string;
  Address: string;
  Leader: boolean;
  Voter: boolean;
  /** The server's release as the answering server last heard it; "" when unknown (a server before 0.2.0 omits the field). */
  Version?: string;
  /** Set while the server's apply is stopped at an entry it does not understand (the index, the release it needs). */
  ApplyStopped?: { Index: number; Needs: string };
}

export interface RaftConfiguration {
  Index: number;
  /** The committed cluster version (absent from a server before 0.2.0). */
  ClusterVersion?: string;
  Servers: RaftServer[];
}

export async function raftConfiguration(c: ApiClient, q?: QueryOptions): Promise<{ config: RaftConfiguration; meta: QueryMeta }> {
  const r = await c.json<RaftConfiguration>({ method: "GET", path: "/v1/operator/raft/configuration", query: q });
  const body = r.body;
  if (!body || !Array.isArray(body.Servers))
    throw new ApiError(r.status, "invalid response to GET /v1/operator/raft/configuration: no Servers");
  return { config: body, meta: r.meta };
}

// The reply's shape is the server's own (type only: the server builds it, so the compiler checks both ends against one definition).
export type { RaftStats } from "../server/raft_stats.ts";

export async function raftStats(c: ApiClient, q?: QueryOptions): Promise<RaftStats> {
  const r = await c.json<RaftStats>({ method: "GET", path: "/v1/operator/raft/stats", query: q });
  if (!r.body || !Array.isArray(r.body.Servers))
    throw new ApiError(r.status, "invalid response to GET /v1/operator/raft/stats: no Servers");
  return r.body;
}

export async function removePeer(c: ApiClient, id: string): Promise<void> {
  await c.json<unknown>({ method: "DELETE", path: "/v1/operator/raft/peer", params: { id } });
}

/** Returns the ID of the server that now leads (as the server reports it). */
export async function transferLeadership(c: ApiClient, id?: string): Promise<string | undefined> {
  const r = await c.json<{ ID?: string }>({
    method: "PUT",
    path: "/v1/operator/raft/transfer-leadership",
    params: { id: id || undefined },
  });
  return typeof r.body?.ID === "string" ? r.body.ID : undefined;
}
