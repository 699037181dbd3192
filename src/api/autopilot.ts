// Autopilot calls: server health, and the runtime configuration.
import { type ApiClient, ApiError, type QueryOptions } from "./client.ts";

export interface AutopilotServerHealth {
  ID: string;
  Name: string;
  Address: string;
  Version: string;
  Leader: boolean;
  Voter: boolean;
  Healthy: boolean;
  /** A duration such as "12ms"; "never" when the leader has not heard from it. */
  LastContact: string;
  LastTerm: number;
  LastIndex: number;
  /** RFC 3339, "" while unhealthy. */
  StableSince: string;
}

export interface AutopilotHealth {
  Healthy: boolean;
  FailureTolerance: number;
  Servers: AutopilotServerHealth[];
}

export async function autopilotHealth(c: ApiClient, q?: QueryOptions): Promise<AutopilotHealth> {
  const r = await c.json<AutopilotHealth>({ method: "GET", path: "/v1/operator/autopilot/health", query: q });
  if (!r.body || !Array.isArray(r.body.Servers))
    throw new ApiError(r.status, "invalid response to GET /v1/operator/autopilot/health: no Servers");
  return r.body;
}
