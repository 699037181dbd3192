// Who may speak raft to this server: the sending member of this cluster, on a session that is its
// own. A stream whose sender is not the server its session proved (cluster key), or whose cluster id
// is another cluster's, is refused; a message from a server outside the configuration is dropped.
// Each is counted by reason. The exceptions a forming or joining server needs are the ones below.
import type { Logger } from "../lib/logger.ts";
import type { RefusalLog } from "../lib/refusal_log.ts";
import type { Configuration, NodeId } from "../raft/storage.ts";
import type { StableStore } from "../storage/stable_store.ts";
import type { PeerIdentity } from "../transport/peer_identity.ts";
import type { Members } from "./members.ts";
import type { Metrics } from "./metrics.ts";
import type { RaftAdmission } from "./peer_transport.ts";

export interface AdmissionView {
  /** This server's cluster id; "" until it bootstrapped or learned it. */
  clusterId(): string;
  /** Record the cluster id a fresh server learns from the first admitted stream that carries one. */
  learnClusterId(id: string): void;
  /** Undefined while raft has not started here (no configuration yet). */
  isMember(id: NodeId): boolean | undefined;
  /** Whether this server is in its own configuration. */
  selfIsMember(): boolean;
  dropped(reason: string, from: NodeId): void;
}

export class RaftGate implements RaftAdmission {
  constructor(private readonly v: AdmissionView) {}

  stream(from: NodeId, cluster: string, peer: PeerIdentity): string | undefined {
    // A key session is bound to the server id inside its handshake MACs. (A certificate names a
    // region's servers, not one of them: with TLS only membership below applies.)
    if (peer.kind === "key" && peer.serverId !== from) return "session_mismatch";
    const own = this.v.clusterId();
    // An empty id on either side is not a mismatch: a fresh server has none until it learns one, and a
    // server that joined before cluster ids were carried may hold none (it learns it here too).
    if (cluster !== "" && own !== "" && cluster !== own) return "cluster_mismatch";
    if (own === "" && cluster !== "" && this.message(from) === undefined) this.v.learnClusterId(cluster);
    return undefined;
  }

  message(from: NodeId): string | undefined {
    const member = this.v.isMember(from);
    // Exception 1: raft has not started here. A server that is forming (its peers bootstrapped a
    // moment earlier) or that was just added by the leader starts raft on the first message it gets.
    if (member === undefined) return undefined;
    if (member) return undefined;
    // Exception 2: this server is not in its own configuration yet: it was added as a non-voter and
    // the entry that adds it (or the snapshot that holds it) has not reached it; until then its
    // configuration names neither itself nor, necessarily, the leader that is sending it that entry.
    if (!this.v.selfIsMember()) return undefined;
    return "not_member";
  }

  dropped(reason: string, from: NodeId): void {
    this.v.dropped(reason, from);
  }
}

/** What the server's gate reads: its stores, its member list and the core's configuration. */
export interface GateHost {
  readonly log: Logger;
  readonly stats: Metrics;
  readonly stable: StableStore;
  readonly members: Members;
  /** Raft drops, logged at a bounded rate. */
  readonly drops: RefusalLog;
  nodeId(): string;
  /** Whether raft has started here. */
  raftRunning(): boolean;
  /** The core's configuration (asked only while raft runs). */
  coreConfig(): Configuration;
  fatal(e: unknown): void;
}

/** The server's raft gate over its stable store (cluster id) and its applied configuration. */
export function serverGate(h: GateHost): RaftGate {
  return new RaftGate({
    clusterId: () => h.stable.get().clusterId,
    learnClusterId: (id) => {
      if (h.stable.get().clusterId !== "") return;
      h.log.info("learned the cluster id from the leader", { cluster: id });
      void h.stable.set({ clusterId: id }).catch((e: unknown) => h.fatal(e));
    },
    isMember: (id) => {
      if (!h.raftRunning()) return undefined;
      if (h.members.has(id)) return true;
      // The core may already hold a configuration the state machine has not applied (a change
      // proposed here as leader): only on a miss, which is rare, is it asked.
      return h.coreConfig().servers.some((s) => s.id === id);
    },
    selfIsMember: () => h.members.has(h.nodeId()),
    dropped: (reason, from) => {
      h.stats.inc(
        "edgenode_raft_messages_dropped_total",
        { reason },
        1,
        "raft streams refused and messages dropped: not a member, another cluster, or a sender other than its session's server",
      );
      h.drops.refuse(reason, from);
    },
  });
}
