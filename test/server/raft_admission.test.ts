// Who may speak raft (RaftGate), rule by rule: a key session is bound to its server id; another
// cluster's id is refused; a sender outside the configuration is dropped; and the exceptions a
// forming or joining server needs (no configuration yet, not yet in its own configuration, no
// cluster id yet) admit what they must and nothing once they no longer apply.
import { expect, test } from "bun:test";
import { RaftGate, type AdmissionView } from "../../src/server/raft_admission.ts";
import type { PeerIdentity } from "../../src/transport/peer_identity.ts";

function gate(o: { cluster?: string; members?: string[] | undefined; self?: string }) {
  const learned: string[] = [];
  const drops: string[] = [];
  let cluster = o.cluster ?? "c1";
  const view: AdmissionView = {
    clusterId: () => cluster,
    learnClusterId: (id) => {
      learned.push(id);
      cluster = id;
    },
    isMember: (id) => (o.members === undefined ? undefined : o.members.includes(id)),
    selfIsMember: () => (o.members ?? []).includes(o.self ?? "me"),
    dropped: (reason) => drops.push(reason),
  };
  return { g: new RaftGate(view), learned, drops, cluster: () => cluster };
}

const key = (serverId: string): PeerIdentity => ({ kind: "key", serverId, region: "global", keyId: "00" });
const anon: PeerIdentity = { kind: "none" };

test("a key session speaks only as the server its handshake named", () => {
  const { g } = gate({ members: ["me", "a", "b"] });
  expect(g.stream("a", "c1", key("a"))).toBeUndefined();
  expect(g.stream("b", "c1", key("a"))).toBe("session_mismatch");
  // TLS names a region's servers, not one: only membership applies.
  expect(g.stream("b", "c1", { kind: "tls", name: "server.global.edgenode" })).toBeUndefined();
});

test("another cluster's id is refused; an empty id on either side is not a mismatch", () => {
  const { g } = gate({ members: ["me", "a"] });
  expect(g.stream("a", "c2", key("a"))).toBe("cluster_mismatch");
  expect(g.stream("a", "", key("a"))).toBeUndefined();
});

test("a member is admitted; a sender outside the configuration is dropped once this server is in it", () => {
  const { g } = gate({ members: ["me", "a"] });
  expect(g.message("a")).toBeUndefined();
  expect(g.message("x")).toBe("not_member");
});

test("exception: before raft starts here (forming, or just added) every sender is admitted", () => {
  const { g } = gate({ members: undefined, cluster: "" });
  expect(g.message("anyone")).toBeUndefined();
});

test("exception: a server not yet in its own configuration (added as a non-voter, entry not yet here) admits the leader", () => {
  const { g } = gate({ members: ["a", "b"] });
  expect(g.message("a")).toBeUndefined();
  expect(g.message("leader-not-in-old-config")).toBeUndefined();
});

test("exception: a server with no cluster id learns it from an admitted stream, and then holds others to it", () => {
  const t = gate({ members: undefined, cluster: "" });
  expect(t.g.stream("leader", "c9", anon)).toBeUndefined();
  expect(t.learned).toEqual(["c9"]);
  expect(t.g.stream("other", "c8", anon)).toBe("cluster_mismatch");
});

test("a stream that is not admitted teaches no cluster id", () => {
  const t = gate({ members: ["me", "a"], cluster: "" });
  expect(t.g.stream("x", "evil", anon)).toBeUndefined();
  expect(t.learned).toEqual([]);
  expect(t.g.message("x")).toBe("not_member");
});
