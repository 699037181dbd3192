// Changes to the raft configuration this server makes as leader: adding a joining server as a
// non-voter, removing a server, moving leadership; and the configuration as operators see it, with
// the servers' names.
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError } from "../lib/errors.ts";
import type { ConfChange } from "../raft/membership.ts";
import type { RawNode } from "../raft/raw_node.ts";
import type { ConnPool } from "../transport/pool.ts";
import type { Members } from "./members.ts";
import type { RaftDriver } from "./raft_driver.ts";
import { type Answer, shownVersion, stoppedOf } from "./versions.ts";

/** A configuration change commits within this or fails (a quorum is down). */
const CONF_CHANGE_TIMEOUT_MS = 30_000;
/** A leadership transfer is reported as failed after this. */
const TRANSFER_TIMEOUT_MS = 10_000;
/** A server whose name is not known yet is asked for it for this long, then shown by id. */
const NAME_PING_TIMEOUT_MS = 1_000;

/** What membership changes need from the server. */
export interface MembershipHost {
  readonly pool: ConnPool;
  readonly members: Members;
  nodeId(): string;
  node(): RawNode | undefined;
  driver(): RaftDriver | undefined;
  /** Resolves at the next leader change, or after `ms`. */
  waitForLeaderChange(ms: number): Promise<void>;
  /** Each server's version report (versions.ts) and the committed cluster version. */
  versions(): Promise<ReadonlyMap<string, Answer>>;
  clusterVersion(): string;
  /** Refuses a joining server whose release is below the committed cluster version (versions.ts). */
  admit(id: string, address: string): Promise<void>;
}

export interface JoinRequest {
  id: string;
  address: string;
  name: string;
}

export class Membership {
  constructor(private readonly host: MembershipHost) {}

  /** The leader's side of a join: the server becomes a non-voter (promoted once caught up), and learns the servers. */
  async addNonvoter(a: JoinRequest): Promise<{ joined: true; servers: { id: string; address: string }[] }> {
    const config = () => this.host.members.config;
    const existing = config().servers.find((s) => s.id === a.id);
    const servers = () => config().servers.map((s) => ({ id: s.id, address: s.address }));
    if (existing && existing.address === a.address) return { joined: true, servers: servers() };
    await this.host.admit(a.id, a.address);
    await this.changeConfig({ type: "addNonvoter", id: a.id, address: a.address });
    return { joined: true, servers: servers() };
  }

  private async changeConfig(cc: ConfChange): Promise<void> {
    const node = this.host.node();
    const driver = this.host.driver();
    if (!node || !driver?.isLeader) throw new EdgeError("NO_LEADER", "this server is not the leader");
    let index: number;
    try {
      index = node.proposeConfChange(cc).index;
    } catch (e) {
      throw new EdgeError("CONFLICT", (e as Error).message);
    }
    driver.kick();
    await withDeadline(driver.waitApplied(index), CONF_CHANGE_TIMEOUT_MS, "configuration change did not commit in time");
  }

  async removePeer(id: string): Promise<void> {
    if (!this.host.members.config.servers.some((s) => s.id === id))
      throw new EdgeError("NOT_FOUND", `server ${id} is not in the raft configuration`);
    await this.changeConfig({ type: "remove", id });
  }

  /** Moves leadership to `id`, or to the most caught-up other voter; resolves with the new leader's id. */
  async transferLeadership(id: string | undefined): Promise<string> {
    const node = this.host.node();
    const driver = this.host.driver();
    if (!node || !driver?.isLeader) throw new EdgeError("NO_LEADER", "this server is not the leader");
    const servers = this.host.members.config.servers;
    const self = this.host.nodeId();
    const st = node.status();
    let target = id;
    if (!target) {
      // The most caught-up other voter.
      let best = -1;
      for (const s of servers) {
        if (!s.voter || s.id === self) continue;
        const m = st.progress?.[s.id]?.match ?? 0;
        if (m > best) {
          best = m;
          target = s.id;
        }
      }
    }
    if (!target) throw new EdgeError("BAD_REQUEST", "no other voter to transfer leadership to");
    const srv = servers.find((s) => s.id === target);
    if (!srv) throw new EdgeError("NOT_FOUND", `server ${target} is not in the raft configuration`);
    if (!srv.voter) throw new EdgeError("BAD_REQUEST", `server ${target} is not a voter`);
    if (target === self) return target;
    node.transferLeadership(target);
    driver.kick();
    // Each pass waits for one leader change, all of them within the transfer's bound.
    const deadline = performance.now() + TRANSFER_TIMEOUT_MS;
    while (performance.now() < deadline) {
      if (driver.leader === target) return target;
      await this.host.waitForLeaderChange(deadline - performance.now());
    }
    throw new EdgeError("TIMEOUT", `leadership did not move to ${target} in time`);
  }

  /** The configuration as `operator raft list-peers` shows it. */
  async configuration() {
    const lead = this.host.driver()?.leader ?? "";
    const commit = this.host.node()?.status().commit ?? 0;
    const [versions] = await Promise.all([this.host.versions(), this.learnNames()]);
    const names = this.host.members.names;
    return {
      Index: commit,
      ClusterVersion: this.host.clusterVersion(),
      Servers: this.host.members.config.servers.map((s) => ({
        ID: s.id,
        Node: names.get(s.id) ?? s.id,
        Address: s.address,
        Leader: s.id === lead,
        Voter: s.voter,
        Version: shownVersion(versions.get(s.id)),
        ...stoppedOf(versions.get(s.id)),
      })),
    };
  }

  private async learnNames(): Promise<void> {
    const names = this.host.members.names;
    await Promise.all(
      this.host.members.config.servers
        .filter((s) => !names.has(s.id))
        .map(async (s) => {
          try {
            const r = (await this.host.pool.call(s.address, "Status.Ping", {}, { timeoutMs: NAME_PING_TIMEOUT_MS })) as {
              ID: string;
              Name: string;
            };
            if (r.ID === s.id) names.set(s.id, r.Name);
          } catch {
            // unreachable: shown by ID
          }
        }),
    );
  }
}
