// Status, region and operator endpoints: leader and peers, the raft
// configuration, removing a peer and transferring leadership.
import { z } from "zod";
import { EdgeError } from "../lib/errors.ts";
import { emptyReply, endpoint } from "./endpoints.ts";
import type { SnapshotHistoryReply } from "./snapshot_history.ts";

/** The raft configuration as Operator.RaftGetConfiguration answers it (Nomad's shape). */
export interface RaftConfiguration {
  Index: number;
  /** The committed cluster version (versions.ts). */
  ClusterVersion: string;
  /** Version: the server's release as last reported, "" when it did not answer. */
  Servers: { ID: string; Node: string; Address: string; Leader: boolean; Voter: boolean; Version: string }[];
}

/** `GET /v1/operator/autopilot/health` (Nomad's shape); LastContact a duration string, StableSince RFC 3339 or "". */
export interface AutopilotHealth {
  Healthy: boolean;
  FailureTolerance: number;
  Servers: {
    ID: string;
    Name: string;
    Address: string;
    Version: string;
    Leader: boolean;
    Voter: boolean;
    Healthy: boolean;
    LastContact: string;
    LastTerm: number;
    LastIndex: number;
    StableSince: string;
  }[];
}

export interface ClusterView {
  leaderAddress(): string;
  voters(): string[];
  regions(): string[];
  configuration(): Promise<RaftConfiguration>;
  removePeer(id: string): Promise<void>;
  transferLeadership(id: string | undefined): Promise<string>;
  /** Throws NO_LEADER off the leader (the router forwards reads there). */
  autopilotHealth(): Promise<AutopilotHealth>;
  /** Every server's snapshot saves and restores, asked of each (snapshot_history.ts). */
  snapshotHistory(): Promise<SnapshotHistoryReply>;
}

export function operatorEndpoints(c: ClusterView) {
  return {
    "Status.Leader": endpoint({ kind: "local", args: z.object({}), handler: async () => ({ reply: c.leaderAddress() }) }),
    "Status.Peers": endpoint({ kind: "local", args: z.object({}), handler: async () => ({ reply: c.voters() }) }),
    "Region.List": endpoint({ kind: "local", args: z.object({}), handler: async () => ({ reply: c.regions() }) }),
    "Operator.RaftGetConfiguration": endpoint({
      kind: "read",
      args: z.object({}),
      handler: async () => ({ reply: await c.configuration() }),
    }),
    "Operator.AutopilotHealth": endpoint({
      kind: "read",
      args: z.object({}),
      handler: async () => ({ reply: await c.autopilotHealth() }),
    }),
    // Local: the answering server asks every server of its region itself, leader or not.
    "Operator.SnapshotHistory": endpoint({
      kind: "local",
      args: z.object({}),
      handler: async () => ({ reply: await c.snapshotHistory() }),
    }),
    "Operator.RaftRemovePeer": endpoint({
      kind: "write",
      args: z.object({ id: z.string().min(1).max(256) }),
      handler: async (a) => {
        await c.removePeer(a.id);
        return emptyReply();
      },
    }),
    "Operator.TransferLeadership": endpoint({
      kind: "write",
      args: z.object({ id: z.string().max(256).optional() }),
      handler: async (a) => {
        const to = await c.transferLeadership(a.id || undefined);
        return { reply: { ID: to } };
      },
    }),
  };
}

export function unknownRegion(region: string, known: string[]): EdgeError {
  return new EdgeError("BAD_REQUEST", `unknown region "${region}"; known regions: ${known.join(", ")}`);
}
