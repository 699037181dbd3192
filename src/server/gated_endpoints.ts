// Endpoints that exist to exercise the feature gate: compiled in only by `build/build.ts --test-features`
// (features.ts TEST_FEATURES). Operator.TestGated writes a test_gated entry, which a 0.1.0 server cannot
// apply, so the leader refuses it until the cluster version allows it. Only for clusters whose servers of
// this release all carry the test features: a release binary would not apply the entry either.
import { z } from "zod";
import type { Endpoint } from "./endpoints.ts";
import { feature, TEST_FEATURES } from "./features.ts";
import type { Fsm, ServerOp } from "./fsm.ts";
import type { ServerVersions } from "./versions.ts";

export function gatedEndpoints(
  fsm: Fsm,
  versions: Pick<ServerVersions, "require">,
  propose: (op: ServerOp) => Promise<unknown>,
): Record<string, Endpoint> {
  if (!TEST_FEATURES) return {};
  fsm.registerOp("test_gated", async (index, op) => ({ Value: op.value, Index: index }));
  const gated: Endpoint<z.ZodType<{ value: string }>> = {
    kind: "write",
    args: z.object({ value: z.string().max(256) }),
    handler: async (a) => {
      await versions.require("test-gated");
      // The entry names its feature and release: a binary without it stops applying here (apply_stop.ts).
      return { reply: await propose({ op: "test_gated", value: a.value, feature: "test-gated", needs: feature("test-gated").since }) };
    },
  };
  return { "Operator.TestGated": gated };
}
