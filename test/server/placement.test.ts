// Where a request runs (placement.ts): here, on the leader, or in another region, with one hop limit.
// First the decision on its own against a stand-in server; then a real server without a leader, where
// a unary call, a snapshot save and a snapshot restore are refused with the same code at the same depth.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EdgeError, hasCode } from "../../src/lib/errors.ts";
import { MAX_FORWARD_HOPS, Placement, type PlacementHost, waitForLeader } from "../../src/server/placement.ts";
import { type Agent, freePort, startAgent } from "../acl/harness.ts";

interface Fake extends PlacementHost {
  leader: boolean;
  address: string;
  /** What waitForLeader makes true, if anything. */
  onWait?: () => void;
  waited: number;
}

function fake(over: Partial<Fake> = {}): Fake {
  const f: Fake = {
    leader: false,
    address: "10.0.0.1:4647",
    waited: 0,
    region: () => "global",
    federation: () => ({ east: { servers: ["e1:4647", "e2:4647"] } }),
    isLeader: () => f.leader,
    leaderAddress: () => f.address,
    waitForLeader: async () => {
      f.waited++;
      f.onWait?.();
      return f.address !== "" || f.leader;
    },
    ...over,
  };
  return f;
}

/** Where `run` put the request: "here", or "addr@hops" for each send tried. */
async function where(p: Placement, q: { region?: string; hops?: number }, needsLeader = true, fail?: (addr: string) => unknown) {
  const sent: string[] = [];
  const r = await p.run(q, () => needsLeader, {
    here: async () => "here",
    send: async (addr, hops) => {
      sent.push(`${addr}@${hops}`);
      const e = fail?.(addr);
      if (e) throw e;
      return `${addr}@${hops}`;
    },
  });
  return { r, sent };
}

describe("placement on its own", () => {
  test("a request that needs no leader runs here", async () => {
    expect((await where(new Placement(fake()), {}, false)).r).toBe("here");
  });

  test("on the leader a request runs here", async () => {
    expect((await where(new Placement(fake({ leader: true })), {})).r).toBe("here");
  });

  test("on a follower it goes to the leader, counting the hop", async () => {
    expect((await where(new Placement(fake()), { hops: 1 })).r).toBe("10.0.0.1:4647@2");
  });

  test("leadership that arrives while waiting runs it here", async () => {
    const f = fake({ address: "" });
    f.onWait = () => {
      f.leader = true;
    };
    expect((await where(new Placement(f), {})).r).toBe("here");
    expect(f.waited).toBe(1);
  });

  test("no leader after the wait is NO_LEADER", async () => {
    const f = fake({ address: "" });
    await expect(where(new Placement(f), {})).rejects.toMatchObject({ code: "NO_LEADER", message: "No cluster leader" });
  });

  test("another region's request goes to one of its servers, moving on only past unreachable ones", async () => {
    const p = new Placement(fake({ leader: true }));
    const ok = await where(p, { region: "east" }, true, (a) => (a === "e1:4647" ? new EdgeError("UNAVAILABLE", "down") : undefined));
    expect(ok.r).toBe("e2:4647@1");
    const down = where(p, { region: "east" }, true, () => new EdgeError("RPC", "refused"));
    await expect(down).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(down).rejects.toThrow("no server of region east is reachable: refused");
    // Any other error is the answer: no second server is tried.
    const denied = await where(p, { region: "east" }, true, () => new EdgeError("PERMISSION_DENIED", "no")).catch((e) => e);
    expect(hasCode(denied, "PERMISSION_DENIED")).toBe(true);
  });

  test("an unknown region is BAD_REQUEST naming the known ones", async () => {
    await expect(where(new Placement(fake()), { region: "mars" })).rejects.toThrow('unknown region "mars"; known regions: east, global');
  });

  test("its own region's name runs as if none was given", async () => {
    expect((await where(new Placement(fake({ leader: true })), { region: "global" })).r).toBe("here");
  });

  test("the hop limit: the leader is not sought past MAX_FORWARD_HOPS, another region not past one more", async () => {
    const f = fake();
    const p = new Placement(f);
    expect((await where(p, { hops: MAX_FORWARD_HOPS - 1 })).r).toBe(`10.0.0.1:4647@${MAX_FORWARD_HOPS}`);
    await expect(where(p, { hops: MAX_FORWARD_HOPS })).rejects.toMatchObject({
      code: "NO_LEADER",
      message: "No cluster leader (forwarding loop)",
    });
    expect(f.waited).toBe(1); // the refusal does not wait for a leader first
    expect((await where(p, { region: "east", hops: MAX_FORWARD_HOPS })).sent.length).toBe(1);
    await expect(where(p, { region: "east", hops: MAX_FORWARD_HOPS + 1 })).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: "region east: forwarding loop",
    });
    // On the leader, or for a request that needs none, the hop count does not matter.
    f.leader = true;
    expect((await where(p, { hops: 7 })).r).toBe("here");
  });

  test("waitForLeader keeps waiting through a change that names no leader, and gives up at its deadline", async () => {
    const waiters: (() => void)[] = [];
    let leader = false;
    const w = waitForLeader(waiters, () => leader, 5_000);
    for (const f of waiters.splice(0)) f(); // an election starting: no leader yet
    expect(waiters.length).toBe(1);
    leader = true;
    for (const f of waiters.splice(0)) f();
    expect(await w).toBe(true);
    leader = false;
    expect(await waitForLeader(waiters, () => leader, 20)).toBe(false);
    expect(waiters.length).toBe(0);
  });
});

describe("a server without a leader", () => {
  let agent: Agent;
  beforeAll(async () => {
    const extraHcl = `server {\n  bootstrap_expect = 3\n}\nfederation {\n  region "east" { servers = ["127.0.0.1:${freePort()}"] }\n}\n`;
    agent = await startAgent(false, { extraHcl, waitLeader: false });
  });
  afterAll(() => agent?.stop());

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => ({ code: "none", message: "" }),
      (e: EdgeError) => ({ code: e.code, message: e.message }),
    );
  const ways = {
    unary: (q: { region?: string; hops: number }) => agent.server.call("Operator.RaftGetConfiguration", {}, q),
    save: (q: { region?: string; hops: number }) => agent.server.snapshotSave(q),
    restore: (q: { region?: string; hops: number }) =>
      agent.server.snapshotRestore(new Blob([new Uint8Array(8)]).stream(), { ...q, dryRun: true, signal: new AbortController().signal }),
  };

  test("unary, save and restore refuse with the same code at the same depth", async () => {
    for (const [way, run] of Object.entries(ways)) {
      expect({ way, ...(await refusal(run({ hops: MAX_FORWARD_HOPS }))) }).toEqual({
        way,
        code: "NO_LEADER",
        message: "No cluster leader (forwarding loop)",
      });
      expect({ way, ...(await refusal(run({ region: "east", hops: MAX_FORWARD_HOPS + 1 }))) }).toEqual({
        way,
        code: "UNAVAILABLE",
        message: "region east: forwarding loop",
      });
      // One hop fewer is within the limit: it is sent on (and finds nobody there).
      const sent = await refusal(run({ region: "east", hops: MAX_FORWARD_HOPS }));
      expect({ way, code: sent.code }).toEqual({ way, code: "UNAVAILABLE" });
      expect(sent.message).toStartWith("no server of region east is reachable");
    }
  });
});
