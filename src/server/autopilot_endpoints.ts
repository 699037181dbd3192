// Operator.AutopilotGetConfiguration / SetConfiguration: autopilot's configuration as in effect
// (what an operator set through raft, else the agent file's), and setting it through a raft entry
// gated as "autopilot-config" so that no server is sent an entry it cannot apply.
import { z } from "zod";
import type { AutopilotConfig } from "./autopilot.ts";
import { type AutopilotConfigOp, type CommittedAutopilot, fromWire, toWire, wireArgs } from "./autopilot_config.ts";
import { endpoint } from "./endpoints.ts";
import { feature } from "./features.ts";

export interface AutopilotEndpointsHost {
  committed: CommittedAutopilot;
  /** The agent file's `server { autopilot {...} }`. */
  fromFile(): AutopilotConfig;
  /** Refuses while the cluster version is below the feature's release (versions.ts). */
  require(name: "autopilot-config"): Promise<void>;
  propose(op: AutopilotConfigOp): Promise<unknown>;
}

/** What the leader's autopilot uses now. */
export function inEffect(h: Pick<AutopilotEndpointsHost, "committed" | "fromFile">): AutopilotConfig {
  return h.committed.config ?? h.fromFile();
}

export function autopilotEndpoints(h: AutopilotEndpointsHost) {
  return {
    "Operator.AutopilotGetConfiguration": endpoint({
      kind: "read",
      args: z.object({}),
      handler: async () => ({ reply: { ...toWire(inEffect(h)), FromFile: h.committed.config === undefined } }),
    }),
    "Operator.AutopilotSetConfiguration": endpoint({
      kind: "write",
      args: wireArgs,
      handler: async (a) => {
        const config = fromWire(inEffect(h), a);
        await h.require("autopilot-config");
        await h.propose({ op: "autopilot_config", config, feature: "autopilot-config", needs: feature("autopilot-config").since });
        return { reply: toWire(config) };
      },
    }),
  };
}
