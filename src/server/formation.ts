// Forming a cluster or joining one (server_join.retry_join): each round asks the configured addresses
// who they are; a server that hears of a leader joins through it, and once bootstrap_expect servers
// of this region know of each other, each of them bootstraps the same configuration. Rounds repeat
// every retry_interval (at most a second) until raft runs here or the server stops.
import { z } from "zod";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/logger.ts";
import type { NodeId } from "../raft/storage.ts";
import type { ConnPool } from "../transport/pool.ts";
import type { Members } from "./members.ts";
import type { BootstrapServer } from "./raft_start.ts";

const DISCOVER_TIMEOUT_MS = 2_000;
/** A join waits for the leader's configuration change to commit (its own bound is 30 s). */
const JOIN_TIMEOUT_MS = 35_000;
const MAX_ROUND_INTERVAL_MS = 1_000;

const joinReply = z.object({
  servers: z.array(z.object({ id: z.string().min(1).max(256), address: z.string().min(1).max(512) })).max(64),
});

const discoverReply = z.object({
  id: z.string(),
  name: z.string(),
  address: z.string(),
  region: z.string(),
  bootstrapped: z.boolean(),
  leader: z.string(),
  known: z.array(z.object({ id: z.string(), address: z.string(), name: z.string() })),
});

type Known = { id: NodeId; address: string; name: string };

/** What formation needs from the server. */
export interface FormationHost {
  readonly cfg: Config;
  readonly log: Logger;
  readonly pool: ConnPool;
  readonly members: Members;
  nodeId(): string;
  advertise(): string;
  raftRunning(): boolean;
  stopping(): boolean;
  bootstrap(servers: BootstrapServer[]): Promise<void>;
  /** The leader's RPC address, "" when none is known. */
  leaderAddr(): string;
}

export class Formation {
  private readonly discovered = new Map<NodeId, Known>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly host: FormationHost) {}

  schedule(ms: number): void {
    if (this.host.stopping()) return;
    this.timer = setTimeout(() => void this.round(), ms);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Cluster.Discover: who this server is, whether it runs raft, and whom it heard of. */
  discover(a: Known) {
    const h = this.host;
    if (a.id) h.members.names.set(a.id, a.name);
    return {
      id: h.nodeId(),
      name: h.cfg.name,
      address: h.advertise(),
      region: h.cfg.region,
      bootstrapped: h.raftRunning(),
      leader: h.leaderAddr(),
      known: [...this.discovered.values()],
    };
  }

  private async round(): Promise<void> {
    const h = this.host;
    if (h.stopping() || h.raftRunning()) return;
    const me = { id: h.nodeId(), address: h.advertise(), name: h.cfg.name };
    this.discovered.set(me.id, me);
    let leaderAddr = "";
    for (const addr of h.cfg.server.server_join.retry_join) {
      try {
        const parsed = discoverReply.safeParse(await h.pool.call(addr, "Cluster.Discover", me, { timeoutMs: DISCOVER_TIMEOUT_MS }));
        if (!parsed.success) {
          h.log.debug("retry_join: an answer that is not a discovery reply", { address: addr });
          continue;
        }
        const r = parsed.data;
        if (r.region !== h.cfg.region) {
          h.log.warn("retry_join address is in another region; ignoring", { address: addr, region: r.region });
          continue;
        }
        this.discovered.set(r.id, { id: r.id, address: r.address, name: r.name });
        h.members.names.set(r.id, r.name);
        for (const k of r.known) if (!this.discovered.has(k.id)) this.discovered.set(k.id, k);
        if (r.bootstrapped && r.leader) leaderAddr = r.leader;
      } catch (e) {
        h.log.debug("retry_join: no answer", { address: addr, error: (e as Error).message });
      }
    }
    if (h.raftRunning()) return;
    const expect = h.cfg.server.bootstrap_expect;
    if (leaderAddr) {
      try {
        const joined = joinReply.safeParse(await h.pool.call(leaderAddr, "Cluster.Join", me, { timeoutMs: JOIN_TIMEOUT_MS }));
        // Without the servers' addresses, our answers to the leader would have nowhere to go.
        if (joined.success) h.members.joined(joined.data.servers, h.raftRunning());
        h.log.info("joined existing cluster", { via: leaderAddr });
        // Raft starts when the leader first contacts us.
      } catch (e) {
        h.log.warn("join failed; retrying", { via: leaderAddr, error: (e as Error).message });
      }
    } else if (expect > 0 && this.discovered.size >= expect) {
      // bootstrap_expect = 0 means "only ever join": such a server must not found a cluster of its own.
      await h.bootstrap([...this.discovered.values()].map((s) => ({ id: s.id, address: s.address, voter: true })));
      return;
    }
    if (!h.raftRunning()) this.schedule(Math.min(h.cfg.server.server_join.retry_interval, MAX_ROUND_INTERVAL_MS));
  }
}
