// An attacker on the servers' network, against a three-server cluster configured as the README says
// (a key from `node operator keygen` in server.encrypt): every attack below is tried, and each
// is refused, with the cluster keeping its leader, its term, its configuration and its data, and the
// refusal visible in /v1/metrics. A key holder is trusted as the server it names in its handshake, no
// further: it cannot speak raft as another member, nor as a server outside the configuration.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { message, type Message } from "../../src/raft/message.ts";
import { ClusterKeys, generateClusterKey } from "../../src/transport/cluster_keys.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import type { RpcError } from "../../src/transport/rpc_error.ts";
import { encode } from "../../src/lib/codec.ts";
import { Cluster, ok, useCluster, waitFor, withLogs, type ClusterServer } from "./harness.ts";

const cluster = useCluster("attacker", { timeoutMs: 120_000 });
let leader: ClusterServer;
/** Node id by server name. */
const ids = new Map<string, string>();
const pools: ConnPool[] = [];

interface Steady {
  leader: string;
  term: number;
  config: string;
}

/** Who leads, at what term, with which configuration, as every server sees it (they must agree). */
async function steady(): Promise<Steady> {
  const seen = await Promise.all(
    cluster.servers.map(async (s) => {
      const st = await s.raftStats();
      const cfg = ok(
        await s.get<{ Servers: { ID: string; Address: string; Voter: boolean }[] }>("/v1/operator/raft/configuration"),
        "raft configuration",
      );
      const config = cfg.body.Servers.map((x) => `${x.ID}@${x.Address}:${x.Voter ? "voter" : "nonvoter"}`)
        .sort()
        .join(",");
      return { leader: String(st.leader), term: Number(st.term), config };
    }),
  );
  for (const x of seen) expect(x).toEqual(seen[0]!);
  return seen[0]!;
}

/** A counter's value on `s` summed over series whose labels include `labels`. */
async function counter(s: ClusterServer, name: string, labels: Record<string, string>): Promise<number> {
  const r = ok(await s.get<{ Counters: { Name: string; Count: number; Labels: Record<string, string> }[] }>("/v1/metrics"), "metrics");
  return r.body.Counters.filter((c) => c.Name === name && Object.entries(labels).every(([k, v]) => c.Labels[k] === v)).reduce(
    (a, c) => a + c.Count,
    0,
  );
}

async function counterSum(name: string, labels: Record<string, string>): Promise<number> {
  let n = 0;
  for (const s of cluster.servers) n += await counter(s, name, labels);
  return n;
}

/** An anonymous pool (preamble 0x01), or one that proves `keys` as server `id`. */
function attacker(keys?: string[], id = "intruder"): ConnPool {
  const p = new ConnPool(
    keys ? { keyed: { keys: new ClusterKeys(keys), self: () => ({ id, region: "global" }) }, backoffBaseMs: 1 } : { backoffBaseMs: 1 },
  );
  pools.push(p);
  return p;
}

let before: Steady;

/** Data written before the attacks must read back the same after each. */
async function dataIntact(): Promise<void> {
  for (const s of cluster.servers) {
    const r = ok(await s.get<{ Items: Record<string, string> }>("/v1/var/app/config"), "read back");
    expect(r.body.Items).toEqual({ color: "blue" });
  }
}

async function unharmed(): Promise<void> {
  expect(await steady()).toEqual(before);
  await dataIntact();
}

const follower = () => cluster.servers.filter((s) => s !== leader);

beforeAll(async () => {
  leader = await cluster.waitForLeader(15_000);
  await leader.putVar("app/config", { color: "blue" });
  const cfg = ok(await leader.get<{ Servers: { ID: string; Address: string }[] }>("/v1/operator/raft/configuration"), "raft configuration");
  for (const s of cluster.servers) ids.set(s.name, cfg.body.Servers.find((x) => x.Address === s.rpcAddr)!.ID);
  await waitFor("all three to have applied the write", 10_000, async () => {
    for (const s of cluster.servers) if ((await s.get("/v1/var/app/config?stale")).status !== 200) return false;
    return true;
  });
  before = await steady();
  expect(before.config.split(",")).toHaveLength(3);
}, 120_000);

afterAll(async () => {
  for (const p of pools) await p.close();
});

const denied = (method: string) => counterSum("edgenode_rpc_denied_total", { method });

describe("attacks on a keyed cluster", () => {
  test("an anonymous Cluster.Join is refused on every server; the configuration keeps its three servers", () =>
    withLogs(cluster, async () => {
      const p = attacker();
      for (const s of cluster.servers) {
        const err = (await p
          .call(s.rpcAddr, "Cluster.Join", { id: "evil", address: "127.0.0.1:1", name: "evil" })
          .catch((e: unknown) => e)) as RpcError;
        expect(err.code).toBe("PERMISSION_DENIED");
      }
      expect(await denied("Cluster.Join")).toBe(3);
      // Also through the generic forwarding method, which can name any endpoint.
      const viaCall = (await p
        .call(leader.rpcAddr, "Endpoint.Call", {
          method: "Cluster.AddNonvoter",
          args: { id: "evil", address: "127.0.0.1:1", name: "evil" },
          q: {},
        })
        .catch((e: unknown) => e)) as RpcError;
      expect(viaCall.code).toBe("PERMISSION_DENIED");
      await unharmed();
    }));

  test("a join with a wrong key fails in the handshake; the refusal is counted", () =>
    withLogs(cluster, async () => {
      const n0 = await counter(leader, "edgenode_connections_refused_total", { port: "rpc", reason: "key_handshake_failed" });
      const p = attacker([generateClusterKey()]);
      const err = (await p
        .call(leader.rpcAddr, "Cluster.Join", { id: "evil", address: "127.0.0.1:1", name: "evil" }, { timeoutMs: 5_000 })
        .catch((e: unknown) => e)) as Error;
      expect(err.message).toContain("cluster key does not match");
      expect(await counter(leader, "edgenode_connections_refused_total", { port: "rpc", reason: "key_handshake_failed" })).toBe(n0 + 1);
      await unharmed();
    }));

  test("Raft.Messages on an anonymous session is refused before a message is read", () =>
    withLogs(cluster, async () => {
      const p = attacker();
      for (const s of cluster.servers) {
        const err = (await p.openStream(s.rpcAddr, "Raft.Messages", { from: "intruder" }).catch((e: unknown) => e)) as RpcError;
        expect(err.code).toBe("PERMISSION_DENIED");
      }
      expect(await denied("Raft.Messages")).toBe(3);
      await unharmed();
    }));

  /** Opens a raft stream as `from` on `p` to `to`, sends one batch and ends it; rejects with how the receiver ended it, if with an error. */
  async function sendRaft(p: ConnPool, to: ClusterServer, from: string, batch: Message[]): Promise<void> {
    const st = await p.openStream(to.rpcAddr, "Raft.Messages", { from, address: "127.0.0.1:1" });
    await st.send(encode(batch)).catch(() => {});
    await st.end().catch(() => {});
    for await (const _ of st) {
      // the receiver sends nothing on a raft stream; its end (or abort) ends this loop
    }
  }

  const appendAbove = (from: string, to: string, term: number): Message =>
    message({ type: "app", from, to, term: term + 1, index: 1_000_000, logTerm: term + 1, commit: 1_000_000 });

  test("a key holder that is not a member: its appends at term+1 are dropped as not_member, the term stays", () =>
    withLogs(cluster, async () => {
      const p = attacker([cluster.key], "intruder");
      const n0 = await counterSum("edgenode_raft_messages_dropped_total", { reason: "not_member" });
      for (const s of cluster.servers) await sendRaft(p, s, "intruder", [appendAbove("intruder", ids.get(s.name)!, before.term)]);
      await waitFor(
        "three not_member drops",
        10_000,
        async () => (await counterSum("edgenode_raft_messages_dropped_total", { reason: "not_member" })) >= n0 + 3,
      );
      await unharmed();
    }));

  test("a member's session cannot speak raft as another member: the stream is refused (session_mismatch)", () =>
    withLogs(cluster, async () => {
      const [f1, f2] = follower() as [ClusterServer, ClusterServer];
      // The key and f1's id: a session that is f1's, claiming the leader's id to f2.
      const p = attacker([cluster.key], ids.get(f1.name)!);
      const n0 = await counterSum("edgenode_raft_messages_dropped_total", { reason: "session_mismatch" });
      const err = await sendRaft(p, f2, ids.get(leader.name)!, [appendAbove(ids.get(leader.name)!, ids.get(f2.name)!, before.term)]).then(
        () => undefined,
        (e: unknown) => e as RpcError,
      );
      expect(err?.code).toBe("PERMISSION_DENIED");
      await waitFor(
        "one session_mismatch",
        10_000,
        async () => (await counterSum("edgenode_raft_messages_dropped_total", { reason: "session_mismatch" })) >= n0 + 1,
      );
      await unharmed();
    }));

  test("on a member's own stream, a message claiming another member as sender is dropped (sender_mismatch)", () =>
    withLogs(cluster, async () => {
      const [f1, f2] = follower() as [ClusterServer, ClusterServer];
      const p = attacker([cluster.key], ids.get(f1.name)!);
      const n0 = await counterSum("edgenode_raft_messages_dropped_total", { reason: "sender_mismatch" });
      await sendRaft(p, f2, ids.get(f1.name)!, [appendAbove(ids.get(leader.name)!, ids.get(f2.name)!, before.term)]);
      await waitFor(
        "one sender_mismatch",
        10_000,
        async () => (await counterSum("edgenode_raft_messages_dropped_total", { reason: "sender_mismatch" })) >= n0 + 1,
      );
      await unharmed();
    }));

  test("a key holder joins only as the server its handshake named, never as another", () =>
    withLogs(cluster, async () => {
      const p = attacker([cluster.key], "intruder-2");
      const err = (await p
        .call(leader.rpcAddr, "Cluster.Join", { id: "someone-else", address: "127.0.0.1:1", name: "x" })
        .catch((e: unknown) => e)) as RpcError;
      expect(err.code).toBe("PERMISSION_DENIED");
      expect(err.message).toContain("a session of server intruder-2 cannot join server someone-else");
      await unharmed();
    }));

  test("a key holder of another (federated) region may forward requests but not join or speak raft", () =>
    withLogs(cluster, async () => {
      const p = new ConnPool({ keyed: { keys: new ClusterKeys([cluster.key]), self: () => ({ id: "east-1", region: "east" }) } });
      pools.push(p);
      const codeOf = (x: Promise<unknown>) =>
        x.then(
          () => "OK",
          (e: unknown) => (e as RpcError).code,
        );
      expect(await codeOf(p.call(leader.rpcAddr, "Cluster.Join", { id: "east-1", address: "127.0.0.1:1", name: "east-1" }))).toBe(
        "PERMISSION_DENIED",
      );
      expect(await codeOf(p.openStream(leader.rpcAddr, "Raft.Messages", { from: "east-1" }))).toBe("PERMISSION_DENIED");
      const r = (await p.call(leader.rpcAddr, "Endpoint.Call", { method: "Var.Get", args: { path: "app/config" }, q: {} })) as {
        reply: { Items: Record<string, string> };
      };
      expect(r.reply.Items).toEqual({ color: "blue" });
      await unharmed();
    }));

  test("staged snapshot files cannot be read, staged, unstaged or counted anonymously", () =>
    withLogs(cluster, async () => {
      const p = attacker();
      const codeOf = (x: Promise<unknown>) =>
        x.then(
          () => "OK",
          (e: unknown) => (e as RpcError).code,
        );
      expect(await codeOf(p.openStream(leader.rpcAddr, "Snapshot.FetchStaged", { id: "x" }))).toBe("PERMISSION_DENIED");
      expect(await codeOf(p.openStream(leader.rpcAddr, "Snapshot.Stage", { id: "x", sha256: "0".repeat(64), size: 1 }))).toBe(
        "PERMISSION_DENIED",
      );
      expect(await codeOf(p.call(leader.rpcAddr, "Snapshot.Unstage", { id: "x" }))).toBe("PERMISSION_DENIED");
      expect(await codeOf(p.call(leader.rpcAddr, "Snapshot.Applied", {}))).toBe("PERMISSION_DENIED");
      expect(await codeOf(p.call(leader.rpcAddr, "Cluster.Discover", { id: "evil", address: "127.0.0.1:1", name: "evil" }))).toBe(
        "PERMISSION_DENIED",
      );
      for (const m of ["Snapshot.FetchStaged", "Snapshot.Stage", "Snapshot.Unstage", "Snapshot.Applied", "Cluster.Discover"])
        expect(await counter(leader, "edgenode_rpc_denied_total", { method: m })).toBe(1);
      // Ping stays open: it is how a port is checked (and what the Go yamux interop test does).
      expect(await p.call(leader.rpcAddr, "Status.Ping", {})).toMatchObject({ ID: ids.get(leader.name) });
      await unharmed();
    }));

  test("silent HTTP connections from one address count against its cap: the one over it is closed at once and counted; the cluster serves", () =>
    withLogs(cluster, async () => {
      const refused = () => counter(leader, "edgenode_connections_refused_total", { port: "http", reason: "conn_limit" });
      const n0 = await refused();
      const cap = 100; // limits.http_max_conns_per_client's default
      /** A TCP connection to the leader's HTTP port that never sends a byte. */
      const silent = async () => {
        const st = { text: "", closed: false, openedAt: performance.now(), closedAt: 0 };
        const sock = await Bun.connect({
          hostname: "127.0.0.1",
          port: leader.httpPort,
          socket: {
            data(_s, d) {
              st.text += new TextDecoder().decode(d);
            },
            close() {
              st.closed = true;
              st.closedAt = performance.now();
            },
          },
        });
        return { st, sock };
      };
      const held: Awaited<ReturnType<typeof silent>>[] = [];
      try {
        // This process's own kept-alive connections to the leader count too, so the refusal may come a few before the cap.
        let over: Awaited<ReturnType<typeof silent>> | undefined;
        for (let i = 0; i <= cap && over === undefined; i++) {
          const c = await silent();
          held.push(c);
          // A refused connection is closed at accept; an admitted one stays open.
          await waitFor("the connection to be refused or kept", 5_000, async () => c.st.closed || performance.now() - c.st.openedAt > 20);
          if (c.st.closed) over = c;
        }
        expect(over).toBeDefined();
        expect(over!.st.closedAt - over!.st.openedAt).toBeLessThan(1_000);
        expect(over!.st.text).toStartWith("HTTP/1.1 429");
        expect(over!.st.text).toContain(`(limit ${cap})`);
        // The admitted silent ones are all still open, and the cluster serves (a write through a follower reaches the leader by RPC).
        expect(held.filter((c) => c !== over && c.st.closed)).toEqual([]);
        expect((await follower()[0]!.putVar("attack/http", { silent: "held" })).Items).toEqual({ silent: "held" });
      } finally {
        for (const c of held) c.sock.end();
      }
      await waitFor("the leader to count the refusal", 10_000, async () => (await refused()) >= n0 + 1);
      await unharmed();
    }));
});

describe("two clusters with different keys on one machine", () => {
  const other = new Cluster("attacker-b");
  afterAll(() => other.cleanup());

  test("a server of another cluster pointed at this one never joins it, and this one never hears from it", () =>
    withLogs(cluster, async () => {
      await other.init();
      expect(other.key).not.toBe(cluster.key);
      const n0 = await counterSum("edgenode_connections_refused_total", { port: "rpc", reason: "key_handshake_failed" });
      const b = other.add({ bootstrapExpect: 0, join: cluster.servers.map((s) => s.rpcAddr) });
      b.start();
      await b.waitHttp();
      // Its formation rounds dial every server of this cluster and fail in the handshake.
      await waitFor(
        "the other cluster's dials to be refused on every server",
        20_000,
        async () => (await counterSum("edgenode_connections_refused_total", { port: "rpc", reason: "key_handshake_failed" })) >= n0 + 3,
      );
      await waitFor("the other server to log its refused dials", 10_000, () => b.log().includes("cluster key does not match"));
      expect(await b.leader()).toBe("");
      await unharmed();
    }));
});

// Last: it adds a member, which every test above checks did not happen.
describe("the door still opens for a server with the key", () => {
  test("a fourth server with the cluster key joins as a non-voter, is promoted, and learns the cluster id", () =>
    withLogs(cluster, async () => {
      const joiner = cluster.add({ bootstrapExpect: 0, join: cluster.servers.map((s) => s.rpcAddr) });
      joiner.start();
      await joiner.waitHttp();
      await waitFor("four voters", 30_000, async () => {
        const r = ok(await leader.get<{ Servers: { Voter: boolean }[] }>("/v1/operator/raft/configuration"), "raft configuration");
        return r.body.Servers.length === 4 && r.body.Servers.every((x) => x.Voter);
      });
      await waitFor("the joiner to learn the cluster id", 10_000, () => joiner.log().includes("learned the cluster id from the leader"));
      const r = ok(await joiner.get<{ Items: Record<string, string> }>("/v1/var/app/config?stale"), "read on the joiner");
      expect(r.body.Items).toEqual({ color: "blue" });
      expect(String((await joiner.raftStats()).leader)).toBe(leader.rpcAddr);
    }));
});
