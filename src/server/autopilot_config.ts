// Autopilot's configuration as set at runtime (`PUT /v1/operator/autopilot/configuration`): a raft
// entry every server applies at the same index, and a field of the snapshot header (format 2 files,
// beside the cluster version), so every server answers the same and a new leader, or a server that
// installed a snapshot, uses what the operator set. Until an entry sets it, the agent file's
// `server { autopilot {...} }` is in effect.
import { z } from "zod";
import { parseDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import { type AutopilotConfig, durationString } from "./autopilot.ts";

/** The entry, gated as feature "autopilot-config": a 0.1.0 server would stop applying at it. */
export type AutopilotConfigOp = { op: "autopilot_config"; config: AutopilotConfig; feature?: "autopilot-config"; needs?: string };

/** Changes kept to answer for a snapshot view taken at an older index. */
const KEPT_CHANGES = 16;
const DAY_MS = 24 * 3_600_000;

/** The bounds of the agent file's keys (config/schema.ts), checked again on every entry and header. */
export const autopilotConfigSchema = z.strictObject({
  cleanupDeadServers: z.boolean(),
  lastContactThresholdMs: z.number().int().min(10).max(3_600_000),
  maxTrailingLogs: z.number().int().min(0).max(10_000_000),
  serverStabilizationMs: z
    .number()
    .int()
    .min(0)
    .max(7 * DAY_MS),
  deadServerLastContactThresholdMs: z
    .number()
    .int()
    .min(1000)
    .max(365 * DAY_MS),
});

function checked(index: number, what: string, c: unknown): AutopilotConfig {
  const r = autopilotConfigSchema.safeParse(c);
  if (!r.success) throw new EdgeError("BAD_REQUEST", `${what} ${index}: bad autopilot configuration: ${r.error.issues[0]?.message}`);
  return r.data;
}

export class CommittedAutopilot {
  private current: AutopilotConfig | undefined;
  private changes: { index: number; config: AutopilotConfig; previous: AutopilotConfig | undefined }[] = [];

  /** What an operator set, undefined while the agent file's configuration is in effect. */
  get config(): AutopilotConfig | undefined {
    return this.current;
  }

  /** What was set as of `index` (for a snapshot header at that index). */
  at(index: number): AutopilotConfig | undefined {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const c = this.changes[i];
      if (c && c.index <= index) return c.config;
    }
    return this.changes[0]?.previous;
  }

  apply(index: number, op: AutopilotConfigOp): AutopilotConfig {
    const config = checked(index, "autopilot_config entry", op.config);
    this.changes.push({ index, config, previous: this.current });
    if (this.changes.length > KEPT_CHANGES) this.changes.shift();
    this.current = config;
    return config;
  }

  /** The state was replaced from a snapshot at `index` whose header carried `config` (none: never set). */
  loaded(index: number, config: unknown): void {
    this.current = config === undefined ? undefined : checked(index, "snapshot", config);
    this.changes = this.current ? [{ index, config: this.current, previous: undefined }] : [];
  }
}

/** The configuration as `GET/PUT /v1/operator/autopilot/configuration` carries it (Nomad's names; durations as strings). */
export interface AutopilotConfigWire {
  CleanupDeadServers: boolean;
  LastContactThreshold: string;
  MaxTrailingLogs: number;
  ServerStabilizationTime: string;
  DeadServerLastContactThreshold: string;
}

export function toWire(c: AutopilotConfig): AutopilotConfigWire {
  return {
    CleanupDeadServers: c.cleanupDeadServers,
    LastContactThreshold: durationString(c.lastContactThresholdMs),
    MaxTrailingLogs: c.maxTrailingLogs,
    ServerStabilizationTime: durationString(c.serverStabilizationMs),
    DeadServerLastContactThreshold: durationString(c.deadServerLastContactThresholdMs),
  };
}

/** What a PUT may carry: any subset; the rest stays as it is. */
export const wireArgs = z.object({
  CleanupDeadServers: z.boolean().optional(),
  LastContactThreshold: z.string().max(32).optional(),
  MaxTrailingLogs: z.number().optional(),
  ServerStabilizationTime: z.string().max(32).optional(),
  DeadServerLastContactThreshold: z.string().max(32).optional(),
});

/** `base` with the PUT's fields; a value out of bounds is refused with the field's name. */
export function fromWire(base: AutopilotConfig, w: z.output<typeof wireArgs>): AutopilotConfig {
  const ms = (field: string, v: string | undefined, d: number): number => {
    if (v === undefined) return d;
    try {
      return parseDuration(v);
    } catch (e) {
      throw new EdgeError("BAD_REQUEST", `${field}: ${(e as Error).message}`);
    }
  };
  const next = {
    cleanupDeadServers: w.CleanupDeadServers ?? base.cleanupDeadServers,
    lastContactThresholdMs: ms("LastContactThreshold", w.LastContactThreshold, base.lastContactThresholdMs),
    maxTrailingLogs: w.MaxTrailingLogs ?? base.maxTrailingLogs,
    serverStabilizationMs: ms("ServerStabilizationTime", w.ServerStabilizationTime, base.serverStabilizationMs),
    deadServerLastContactThresholdMs: ms(
      "DeadServerLastContactThreshold",
      w.DeadServerLastContactThreshold,
      base.deadServerLastContactThresholdMs,
    ),
  };
  const r = autopilotConfigSchema.safeParse(next);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new EdgeError("BAD_REQUEST", `bad autopilot configuration: ${String(i?.path[0] ?? "")} ${i?.message ?? ""}`);
  }
  return r.data;
}
