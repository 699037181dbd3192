// Status, region and operator endpoints: leader and peers, the raft
// configuration, removing a peer and transferring leadership.
import { z } from "zod";
import { EdgeError } from "../lib/errors.ts";
import type { Endpoint } from "./endpoints.ts";

export interface ClusterView {
  leaderAddress(): string;
  voters(): string[];
  regions(): string[];
  configuration(): Promise<{ Index: number; Servers: { ID: string; Node: string; Address: string; Leader: boolean; Voter: boolean }[] }>;
  removePeer(id: string): Promise<void>;
  transferLeadership(id: string | undefined): Promise<string>;
}

export function operatorEndpoints(c: ClusterView): Record<string, Endpoint> {
  return {
    "Status.Leader": { kind: "local", args: z.object({}), handler: async () => ({ reply: c.leaderAddress() }) },
    "Status.Peers": { kind: "local", args: z.object({}), handler: async () => ({ reply: c.voters() }) },
    "Region.List": { kind: "local", args: z.object({}), handler: async () => ({ reply: c.regions() }) },
    "Operator.RaftGetConfiguration": {
      kind: "read",
      args: z.object({}),
      handler: async () => ({ reply: await c.configuration() }),
    },
    "Operator.RaftRemovePeer": {
      kind: "write",
      args: z.object({ id: z.string().min(1).max(256) }),
      handler: async (a: { id: string }) => {
        await c.removePeer(a.id);
        return { reply: {} };
      },
    },
    "Operator.TransferLeadership": {
      kind: "write",
      args: z.object({ id: z.string().max(256).optional() }),
      handler: async (a: { id?: string }) => {
        const to = await c.transferLeadership(a.id || undefined);
        return { reply: { ID: to } };
      },
    },
  };
}

export function unknownRegion(region: string, known: string[]): EdgeError {
  return new EdgeError("BAD_REQUEST", `unknown region "${region}"; known regions: ${known.join(", ")}`);
}
