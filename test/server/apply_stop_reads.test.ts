// Reads on a server whose apply stopped at an entry it does not understand: a consistent read served
// here (as leader, before it hands leadership away) and a blocking query past its state are refused with
// NOT_APPLIED (503) naming the index; a stale read is served with how far behind it is. While applying,
// nothing changes.
import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { hasCode } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { ApplyStop, notUnderstood, notUnderstoodError } from "../../src/server/apply_stop.ts";
import type { Endpoint } from "../../src/server/endpoints.ts";
import { Metrics } from "../../src/server/metrics.ts";
import type { Placement } from "../../src/server/placement.ts";
import { Router, type RouterHost } from "../../src/server/router.ts";

function setup(stopped: boolean) {
  const stop = new ApplyStop({ log: silentLogger(), stats: new Metrics(), forbidCampaign: () => {}, behind: () => 3 });
  const report = notUnderstood(7, { op: "test_gated", feature: "test-gated", needs: "0.2.0" }, () => false);
  if (stopped && report) stop.stop(7, notUnderstoodError(report));
  let barriers = 0;
  const get: Endpoint<z.ZodType<Record<string, never>>> = {
    kind: "read",
    args: z.object({}),
    handler: async (_a, ctx) => ctx.blocking("vars", "k", () => ({ reply: "v", index: 6 })),
  };
  const host = {
    placement: {
      run: (_q: unknown, needsLeader: () => boolean, r: { here: () => unknown }) => {
        needsLeader();
        return r.here();
      },
    } as unknown as Placement,
    stats: new Metrics(),
    log: silentLogger(),
    transferSettleMs: 100,
    endpoints: () => ({ "Var.Get": get as Endpoint }),
    raft: () => ({
      isLeader: true,
      leader: "a",
      lastContact: 0,
      readBarrier: async () => {
        barriers++;
        return 6;
      },
    }),
    authorize: () => undefined,
    applyStop: () => stop,
  } as unknown as RouterHost;
  return { router: new Router(host), barriers: () => barriers, stop };
}

describe("reads on a stopped server", () => {
  test("a consistent read here is refused naming the index, before any read barrier", async () => {
    const { router, barriers, stop } = setup(true);
    const e = await router.call("Var.Get", {}, {}).catch((x: unknown) => x);
    expect(hasCode(e, "NOT_APPLIED")).toBe(true);
    expect(String((e as Error).message)).toContain("3 entries behind");
    expect(String((e as Error).message)).toContain("index 7");
    expect(barriers()).toBe(0);
    stop.close();
  });

  test("a stale read is served and says how far behind; a blocking one past its state is refused at once", async () => {
    const { router, stop } = setup(true);
    const r = await router.call("Var.Get", {}, { stale: true });
    expect(r.reply).toBe("v");
    expect(r.meta?.behind).toBe(3);
    const t0 = performance.now();
    const e = await router.call("Var.Get", {}, { stale: true, minIndex: 6, waitMs: 5_000 }).catch((x: unknown) => x);
    expect(hasCode(e, "NOT_APPLIED")).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1_000);
    // One whose answer is already past its index is served.
    expect((await router.call("Var.Get", {}, { stale: true, minIndex: 5 })).reply).toBe("v");
    stop.close();
  });

  test("while applying: consistent reads pass the barrier, stale ones carry no lag", async () => {
    const { router, barriers } = setup(false);
    expect((await router.call("Var.Get", {}, {})).reply).toBe("v");
    expect(barriers()).toBe(1);
    expect((await router.call("Var.Get", {}, { stale: true })).meta?.behind).toBeUndefined();
  });
});
