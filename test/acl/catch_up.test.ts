// An unknown secret on a follower waits once for a read barrier, then is looked up again: a token
// whose entry the barrier applies is allowed; one still unknown, or a barrier that fails or outlasts
// the bound, is refused as before, in bounded time. Known secrets, the leader, no leader: no wait.
import { describe, expect, test } from "bun:test";
import { EdgeError } from "../../src/lib/errors.ts";
import { Acl, hashSecret } from "../../src/server/acl.ts";
import { AclCatchUp, MAX_CATCH_UPS, type CatchUpRaft } from "../../src/server/acl_catch_up.ts";
import { StateStore } from "../../src/state/state_store.ts";

const RULES = `variables {\n  path "app/*" { capabilities = ["read"] }\n}\n`;

function store() {
  const state = new StateStore();
  let index = 0;
  const apply = (cmd: unknown) => {
    const r = state.apply(++index, cmd);
    if (!r.ok) throw new Error(r.message);
  };
  apply({ op: "acl.policy-upsert", policy: { Name: "app-read", Description: "", Rules: RULES }, now: 1 });
  const addToken = (secret: string, type: "management" | "client") =>
    apply({
      op: "acl.token-upsert",
      token: {
        AccessorID: crypto.randomUUID(),
        SecretHash: hashSecret(secret),
        Name: "t",
        Type: type,
        Policies: type === "client" ? ["app-read"] : [],
        CreateTime: 1,
      },
      now: 1,
    });
  return { state, addToken };
}

/** A follower's raft whose barrier runs `onBarrier` (or never settles with `hang`). */
function follower(onBarrier: () => Promise<unknown>, role: Partial<CatchUpRaft> = {}) {
  const raft = {
    isLeader: false,
    leader: "leader-id",
    barriers: 0,
    readBarrier() {
      raft.barriers++;
      return onBarrier();
    },
    ...role,
  };
  return raft;
}

/** How `authorize` settles: "ok" or the error's code, and whether it returned a promise. */
async function outcome(acl: Acl, method: string, args: Record<string, unknown>, token: string | undefined) {
  let waited = false;
  try {
    const r = acl.authorize(method, args, token);
    waited = r instanceof Promise;
    await r;
    return { result: "ok", waited };
  } catch (e) {
    return { result: e instanceof EdgeError ? e.code : String(e), waited };
  }
}

describe("an unknown secret on a follower", () => {
  test("is allowed once the barrier applies its token", async () => {
    const { state, addToken } = store();
    const secret = crypto.randomUUID();
    const raft = follower(async () => addToken(secret, "client"));
    const acl = new Acl(() => state, true, new AclCatchUp(() => raft));
    expect(await outcome(acl, "Var.Get", { path: "app/x" }, secret)).toEqual({ result: "ok", waited: true });
    expect(raft.barriers).toBe(1);
    // Its policies still decide: caught up, a write it may not make is refused.
    expect(await outcome(acl, "Var.Put", { path: "app/x" }, secret)).toEqual({ result: "PERMISSION_DENIED", waited: false });
    expect(raft.barriers).toBe(1);
  });

  test("is refused when still unknown after the barrier", async () => {
    const { state } = store();
    const raft = follower(async () => 7);
    const acl = new Acl(() => state, true, new AclCatchUp(() => raft));
    expect(await outcome(acl, "Region.List", {}, crypto.randomUUID())).toEqual({ result: "PERMISSION_DENIED", waited: true });
    expect(raft.barriers).toBe(1);
  });

  test("is refused in bounded time when the barrier never answers, and when it fails", async () => {
    const { state, addToken } = store();
    const secret = crypto.randomUUID();
    const hung = follower(() => new Promise(() => {}));
    const acl = new Acl(() => state, true, new AclCatchUp(() => hung, 150));
    const t0 = performance.now();
    expect(await outcome(acl, "Region.List", {}, secret)).toEqual({ result: "PERMISSION_DENIED", waited: true });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(2_000);
    // A failing barrier (no leader any more, shutting down) refuses too, even when the token has
    // meanwhile arrived: the refusal stays PERMISSION_DENIED, never the barrier's error.
    const late = crypto.randomUUID();
    const failing = follower(async () => {
      addToken(late, "management");
      throw new EdgeError("NO_LEADER", "no leader");
    });
    const acl2 = new Acl(() => state, true, new AclCatchUp(() => failing));
    expect(await outcome(acl2, "Region.List", {}, late)).toEqual({ result: "PERMISSION_DENIED", waited: true });
    expect(failing.barriers).toBe(1);
  });

  test("many at once are refused, each waiting at most the bound", async () => {
    const { state } = store();
    const hung = follower(() => new Promise(() => {}));
    const acl = new Acl(() => state, true, new AclCatchUp(() => hung, 100));
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: 2_000 }, () => outcome(acl, "Region.List", {}, crypto.randomUUID())));
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(all.every((o) => o.result === "PERMISSION_DENIED")).toBe(true);
    // Past the cap of waiting secrets the rest are refused without a barrier.
    expect(hung.barriers).toBe(MAX_CATCH_UPS);
  });
});

describe("no wait", () => {
  test("for a known secret, on the leader, with no leader known, without a secret or with too long a one", async () => {
    const { state, addToken } = store();
    const known = crypto.randomUUID();
    addToken(known, "management");
    const raft = follower(async () => 1);
    const acl = new Acl(() => state, true, new AclCatchUp(() => raft));
    expect(await outcome(acl, "Region.List", {}, known)).toEqual({ result: "ok", waited: false });
    expect(await outcome(acl, "Region.List", {}, undefined)).toEqual({ result: "PERMISSION_DENIED", waited: false });
    expect(await outcome(acl, "Region.List", {}, "")).toEqual({ result: "PERMISSION_DENIED", waited: false });
    expect(await outcome(acl, "Region.List", {}, "x".repeat(300))).toEqual({ result: "PERMISSION_DENIED", waited: false });
    expect(await outcome(acl, "Status.Leader", {}, crypto.randomUUID())).toEqual({ result: "ok", waited: false });
    expect(raft.barriers).toBe(0);

    for (const role of [{ isLeader: true }, { leader: "" }]) {
      const r = follower(async () => 1, role);
      const a = new Acl(() => state, true, new AclCatchUp(() => r));
      // The catch-up answers at once; the refusal is the one it always was.
      const t0 = performance.now();
      expect((await outcome(a, "Region.List", {}, crypto.randomUUID())).result).toBe("PERMISSION_DENIED");
      expect(performance.now() - t0).toBeLessThan(100);
      expect(r.barriers).toBe(0);
    }
    // Raft not started yet.
    const early = new Acl(() => state, true, new AclCatchUp(() => undefined));
    expect((await outcome(early, "Region.List", {}, crypto.randomUUID())).result).toBe("PERMISSION_DENIED");
  });
});
