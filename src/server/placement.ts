// Where a request runs: here, on this region's leader, or in another region. One decision with one
// hop limit serves unary calls (router.ts), snapshot save and snapshot restore; each caller says only
// how to run the request here and how to send it one hop on (a unary RPC, a save or restore stream).
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError, hasCode } from "../lib/errors.ts";
import { unknownRegion } from "./operator_endpoints.ts";

/**
 * How many times a request may already have been sent on when it is sent on to a leader: one that
 * arrives with this many hops at a server that does not lead is in a loop (servers naming each other
 * leader while leadership moves), and is refused rather than sent round again. Entering another region counts
 * as a hop, so sending a request to its region is refused one hop later (a federation that names back).
 */
export const MAX_FORWARD_HOPS = 2;
/** RPC methods a server of another (federated) region may call: forwarded requests, and ping. */
export const CROSS_REGION_METHODS: ReadonlySet<string> = new Set(["Status.Ping", "Endpoint.Call", "Snapshot.Save", "Snapshot.Restore"]);
/** How long a request waits for a leader to be known before it is answered NO_LEADER. */
export const LEADER_WAIT_MS = 5_000;

/** What placement reads of the server: its region and federation, and who leads its region. */
export interface PlacementHost {
  region(): string;
  /** The servers of each other region this one federates with (config `federation`). */
  federation(): Readonly<Record<string, { readonly servers: readonly string[] }>> | undefined;
  isLeader(): boolean;
  /** The leader's RPC address, "" when none is known. */
  leaderAddress(): string;
  /** Resolves true once a leader is known, false after `ms` without one. */
  waitForLeader(ms: number): Promise<boolean>;
}

/** The part of a request that placement reads: the region it is for and how often it was sent on. */
export interface Hops {
  region?: string;
  hops?: number;
}

/** How to run one request: here, or sent on to `addr` carrying `hops` (this hop counted). */
export interface Runner<T> {
  here(): Promise<T>;
  send(addr: string, hops: number): Promise<T>;
}

export class Placement {
  constructor(private readonly host: PlacementHost) {}

  /** This server's region and those it federates with, sorted. */
  regions(): string[] {
    return regionsOf(this.host.region(), this.host.federation());
  }

  /**
   * Run `r` where the request belongs. Another region's request goes to a server of that region;
   * otherwise it runs here unless `needsLeader()` (asked only once the region is known to be this
   * one) and this server does not lead, in which case it waits for a leader and goes to it.
   */
  async run<T>(q: Hops, needsLeader: () => boolean, r: Runner<T>): Promise<T> {
    const hops = q.hops ?? 0;
    if (q.region && q.region !== this.host.region()) {
      const servers = this.host.federation()?.[q.region]?.servers;
      if (!servers || servers.length === 0) throw unknownRegion(q.region, this.regions());
      if (hops >= MAX_FORWARD_HOPS + 1) throw new EdgeError("UNAVAILABLE", `region ${q.region}: forwarding loop`);
      return this.viaRegion(q.region, servers, (addr) => r.send(addr, hops + 1));
    }
    if (!needsLeader() || this.host.isLeader()) return r.here();
    if (hops >= MAX_FORWARD_HOPS) throw new EdgeError("NO_LEADER", "No cluster leader (forwarding loop)");
    if (!(await this.host.waitForLeader(LEADER_WAIT_MS))) throw new EdgeError("NO_LEADER", "No cluster leader");
    // Leadership may have come here while waiting: decide again.
    if (this.host.isLeader()) return this.run(q, needsLeader, r);
    const addr = this.host.leaderAddress();
    if (!addr) throw new EdgeError("NO_LEADER", "No cluster leader");
    return r.send(addr, hops + 1);
  }

  /**
   * Runs `open` against the servers of `region` in random order until one is reachable: a server that
   * is down must not fail a request another server of the region can take, and a region with none up
   * is named in the error. Only unreachable-server errors move on; any other error is the answer.
   */
  private async viaRegion<T>(region: string, servers: readonly string[], open: (addr: string) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const addr of shuffle(servers)) {
      try {
        return await open(addr);
      } catch (e) {
        last = e;
        if (!hasCode(e, "RPC", "UNAVAILABLE")) throw e;
      }
    }
    throw new EdgeError("UNAVAILABLE", `no server of region ${region} is reachable: ${(last as Error)?.message}`);
  }
}

/** The leader's address in `servers`, "" when there is no leader or it is not among them. */
export function leaderAddress(leader: string | undefined, servers: readonly { id: string; address: string }[]): string {
  if (!leader) return "";
  return servers.find((s) => s.id === leader)?.address ?? "";
}

/**
 * Resolves true once `hasLeader()`, false after `ms` without one. `waiters` are called on every leader
 * change; a change that leaves no leader (an election starting, say after the leader restarted) keeps
 * waiting: it is not an answer.
 */
export function waitForLeader(waiters: (() => void)[], hasLeader: () => boolean, ms: number): Promise<boolean> {
  if (hasLeader()) return Promise.resolve(true);
  let done = () => {};
  const known = new Promise<void>((resolve) => {
    done = () => {
      if (hasLeader()) resolve();
      else waiters.push(done);
    };
    waiters.push(done);
  });
  return withDeadline(known, ms, "waiting for a leader").then(
    () => true,
    () => {
      const i = waiters.indexOf(done);
      if (i >= 0) waiters.splice(i, 1);
      return hasLeader();
    },
  );
}

function shuffle<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** This server's region and those of its federation, sorted (also asked before any Placement exists). */
export function regionsOf(region: string, federation: Readonly<Record<string, unknown>> | undefined): string[] {
  return [...new Set([region, ...Object.keys(federation ?? {})])].sort();
}
