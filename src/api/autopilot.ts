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

/** Autopilot's configuration in effect; `FromFile`: no operator has set it, the agent file's is used. */
export interface AutopilotConfiguration {
  CleanupDeadServers: boolean;
  LastContactThreshold: string;
  MaxTrailingLogs: number;
  ServerStabilizationTime: string;
  DeadServerLastContactThreshold: string;
  FromFile?: boolean;
}

export async function autopilotConfiguration(c: ApiClient, q?: QueryOptions): Promise<AutopilotConfiguration> {
  const r = await c.json<AutopilotConfiguration>({ method: "GET", path: "/v1/operator/autopilot/configuration", query: q });
  if (!r.body || typeof r.body.CleanupDeadServers !== "boolean")
    throw new ApiError(r.status, "invalid response to GET /v1/operator/autopilot/configuration");
  return r.body;
}

/** Sets the given fields (the rest stay); returns the configuration now in effect. */
export async function setAutopilotConfiguration(
  c: ApiClient,
  change: Partial<Omit<AutopilotConfiguration, "FromFile">>,
): Promise<AutopilotConfiguration> {
  const r = await c.json<AutopilotConfiguration>({ method: "PUT", path: "/v1/operator/autopilot/configuration", json: change });
  return r.body;
}
