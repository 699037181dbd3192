// The leader's knowledge of versions against a fake pool: a 0.1.0 server is known by its "unknown rpc
// method" answer; an unreachable one is no version and holds the cluster version where it is; once
// every server answers a release that knows the entry, the lowest is proposed, once; the gate's refusal
// names the servers too old; a joining server below the committed version is refused.
import { describe, expect, test } from "bun:test";
import { EdgeError, hasCode } from "../../src/lib/errors.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { CommittedVersion } from "../../src/server/cluster_version.ts";
import { Members } from "../../src/server/members.ts";
import { ServerVersions } from "../../src/server/versions.ts";
import { RpcError } from "../../src/transport/rpc_error.ts";
import type { ConnPool } from "../../src/transport/pool.ts";

type Peer = "0.1.0" | "0.2.0" | "0.3.0" | "down";

function setup(peers: Record<string, Peer>) {
  const log = createLogger({ level: "ERROR", write: () => {} });
  const members = new Members({ log, nodeId: () => "self", setPeers: () => {} });
  members.set({
    servers: [
      { id: "self", address: "self:1", voter: true },
      ...Object.keys(peers).map((id) => ({ id, address: `${id}:1`, voter: id !== "learner" })),
    ],
  });
  for (const id of Object.keys(peers)) members.names.set(id, `name-${id}`);
  const pool = {
    call: async (address: string, method: string) => {
      expect(method).toBe("Status.Versions");
      const id = address.slice(0, -2);
      const v = peers[id];
      if (v === "down") throw new EdgeError("DISCONNECTED", `dial ${address}: connection refused`);
      if (v === "0.1.0") throw new RpcError("NOT_FOUND", "unknown rpc method Status.Versions");
      return { ID: id, Version: v, Formats: { Log: 2, Snapshot: 2, Rpc: 1 } };
    },
  } as unknown as ConnPool;
  const committed = new CommittedVersion();
  const proposed: string[] = [];
  let index = 10;
  const versions = new ServerVersions({
    log,
    pool,
    members,
    nodeId: () => "self",
    isLeader: () => true,
    stopping: () => false,
    committed: () => committed,
    propose: async (op) => {
      proposed.push(op.version);
      return committed.apply(++index, op);
    },
  });
  return { versions, committed, proposed, peers };
}

describe("the leader's versions", () => {
  test("a 0.1.0 server is known by its unknown-method answer and keeps the cluster at 0.1.0; the gate names it", async () => {
    const { versions, committed, proposed } = setup({ a: "0.2.0", b: "0.1.0" });
    await versions.leading();
    const answers = await versions.current();
    expect(answers.get("b")).toEqual({ report: { Version: "0.1.0", Formats: { Log: 1, Snapshot: 1, Rpc: 1 }, Inferred: true } });
    expect(proposed).toEqual([]);
    expect(committed.version).toBe("0.1.0");
    const e = await versions.require("cluster-version").catch((x: unknown) => x);
    expect(hasCode(e, "CONFLICT")).toBe(true);
    expect((e as Error).message).toContain("name-b (b) runs 0.1.0");
    expect((e as Error).message).not.toContain("name-a");
  });

  test("an unreachable server is no version: nothing is committed until it answers", async () => {
    const { versions, proposed, peers } = setup({ a: "0.2.0", b: "down" });
    await versions.leading();
    expect(proposed).toEqual([]);
    expect((await versions.current()).get("b")).toEqual({ error: "dial b:1: connection refused" });
    const e = await versions.require("cluster-version").catch((x: unknown) => x);
    expect((e as Error).message).toContain("name-b (b): version unknown");
    peers.b = "0.2.0";
    await versions.leading();
    expect(proposed).toEqual(["0.2.0"]);
    await versions.require("cluster-version");
  });

  test("the lowest release of every server is proposed once; a non-voter counts; a lower one is never written", async () => {
    // This process runs 0.2.0 (a source build): the lowest of {0.2.0, 0.3.0, a non-voter's} is proposed.
    const held = setup({ a: "0.3.0", learner: "0.1.0" });
    await held.versions.leading();
    expect(held.proposed).toEqual([]);

    const { versions, committed, proposed, peers } = setup({ a: "0.3.0", learner: "0.3.0" });
    await versions.leading();
    await versions.leading();
    expect(proposed).toEqual(["0.2.0"]);
    expect(committed.version).toBe("0.2.0");
    peers.a = "0.1.0";
    await versions.leading();
    expect(proposed).toEqual(["0.2.0"]);
    expect(committed.version).toBe("0.2.0");
  });

  test("a joining server below the committed version is refused; before any is committed, anyone joins", async () => {
    const { versions, peers } = setup({ a: "0.2.0" });
    peers.c = "0.1.0";
    await versions.admit("c", "c:1");
    await versions.leading();
    const e = await versions.admit("c", "c:1").catch((x: unknown) => x);
    expect(hasCode(e, "CONFLICT")).toBe(true);
    expect((e as Error).message).toContain("runs 0.1.0, below the cluster version 0.2.0");
    peers.d = "down";
    expect(hasCode(await versions.admit("d", "d:1").catch((x: unknown) => x), "UNAVAILABLE")).toBe(true);
    peers.e = "0.2.0";
    await versions.admit("e", "e:1");
  });

  test("a server back on an older release after the raise holds the features of newer ones (the gate and the fallback's check) until it runs them again", async () => {
    const { versions, committed, proposed, peers } = setup({ a: "0.2.0" });
    await versions.leading();
    expect(proposed).toEqual(["0.2.0"]);
    expect(versions.allowed("one-pass-restore")).toBe(true);
    await versions.require("one-pass-restore");
    peers.a = "0.1.0";
    await versions.leading();
    expect(committed.version).toBe("0.2.0");
    expect(versions.allowed("one-pass-restore")).toBe(false);
    const e = await versions.require("one-pass-restore").catch((x: unknown) => x);
    expect(hasCode(e, "CONFLICT")).toBe(true);
    expect((e as Error).message).toContain("name-a (a) runs 0.1.0");
    peers.a = "0.2.0";
    await versions.leading();
    expect(versions.allowed("one-pass-restore")).toBe(true);
  });
});
