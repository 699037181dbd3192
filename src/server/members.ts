// The raft configuration this server applied (members, their addresses, which vote), the servers a
// join answered with, and the names servers go by. Kept in step with the state machine: a change is
// taken when its entry or the snapshot holding it is applied, not when the core first sees it.
import type { Logger } from "../lib/logger.ts";
import { decodeConfChange } from "../raft/membership.ts";
import type { Configuration, Entry, NodeId } from "../raft/storage.ts";

/** What the member list needs from the server. */
export interface MembersHost {
  readonly log: Logger;
  nodeId(): string;
  /** The servers raft messages go to (PeerTransport.setPeers). */
  setPeers(peers: { id: NodeId; address: string }[]): void;
}

export class Members {
  private current: Configuration = { servers: [] };
  /** The ids of the applied configuration, for the per-message membership check. */
  private ids = new Set<NodeId>();
  /** The configuration the leader answered a join with (see set). */
  private joinPeers: { id: NodeId; address: string }[] = [];
  /** Server names by id: this server's, those discovered or joined, and those asked (Membership.learnNames). */
  readonly names = new Map<NodeId, string>();

  constructor(private readonly host: MembersHost) {}

  get config(): Configuration {
    return this.current;
  }

  has(id: NodeId): boolean {
    return this.ids.has(id);
  }

  set(c: Configuration): void {
    this.current = { servers: c.servers.map((s) => ({ ...s })) };
    this.ids = new Set(c.servers.map((s) => s.id));
    // A server that joined a running cluster is not in its own configuration until the entry that
    // added it is applied; until then it must still be able to answer the servers the leader named.
    const self = this.current.servers.some((s) => s.id === this.host.nodeId());
    const extra = self ? [] : this.joinPeers.filter((p) => !this.current.servers.some((s) => s.id === p.id));
    this.host.setPeers([...this.current.servers, ...extra]);
  }

  /**
   * A join answered with the cluster's servers. Until raft starts here (on the leader's first message)
   * they are the peers; after, the configuration names them (see set).
   */
  joined(servers: { id: NodeId; address: string }[], raftRunning: boolean): void {
    this.joinPeers = servers;
    if (!raftRunning) this.host.setPeers(servers);
  }

  applyConfChange(e: Entry): void {
    // The core applies the configuration itself in advance(); the record carries the result.
    const rec = decodeConfChange(e.data);
    this.set(rec.config);
    this.host.log.info("configuration changed", {
      index: e.index,
      change: rec.change.type,
      id: rec.change.id,
      voters: this.current.servers.filter((s) => s.voter).length,
    });
  }
}
