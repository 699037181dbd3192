// Runs an endpoint call where placement puts it: validates its arguments, forwards it to the leader
// or another region as a unary RPC, or runs its handler here (after a read barrier for a consistent
// read, and the permission check); holds blocking reads; routes a write again when the leader
// refused it because leadership was moving.
import type { CallResult, QueryMeta, QueryOptions } from "./backend.ts";
import { withDeadline } from "../lib/deadline.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { Command } from "../state/commands.ts";
import type { StateStore } from "../state/state_store.ts";
import type { TableName } from "../state/tables.ts";
import type { ApplyStop } from "./apply_stop.ts";
import type { Endpoint, EndpointContext } from "./endpoints.ts";
import type { Metrics } from "./metrics.ts";
import { LEADER_WAIT_MS, type Placement } from "./placement.ts";
import { retryOnNextLeader } from "./write_retry.ts";

/** Bound on a forwarded call beyond any blocking wait. */
const FORWARD_TIMEOUT_MS = 12_000;
/** A blocking query waits up to 1/JITTER_FRACTION longer than asked, so that waits end spread out. */
const JITTER_FRACTION = 16;
const DEFAULT_WAIT_MS = 300_000;

export type RoutedQuery = QueryOptions & { hops?: number };

/** The raft driver as routing sees it. */
export interface RouterRaft {
  readonly isLeader: boolean;
  readonly leader: string;
  /** When the leader was last heard (performance.now()), 0 if never. */
  readonly lastContact: number;
  readBarrier(): Promise<unknown>;
}

/** What routing needs of the server. */
export interface RouterHost {
  readonly placement: Placement;
  readonly stats: Metrics;
  readonly log: Logger;
  /** How long a leadership transfer takes to finish or be abandoned: one election timeout (raft.ts transferLeadership). */
  readonly transferSettleMs: number;
  endpoints(): Readonly<Record<string, Endpoint>>;
  raft(): RouterRaft | undefined;
  /** The permission check run where a call executes; undefined when ACLs are off. */
  authorize(): ((method: string, args: Record<string, unknown>, token: string | undefined) => void | Promise<void>) | undefined;
  state(): StateStore;
  /** Resolves when the state store is next replaced (a restore or a snapshot install), or `signal` aborts. */
  swapped(signal: AbortSignal): Promise<void>;
  propose(cmd: Command): Promise<unknown>;
  /** Resolves at the next leader change, or after `ms`. */
  waitForLeaderChange(ms: number): Promise<void>;
  /** This server's apply stop (apply_stop.ts): reads that need its state current are refused while it lasts. */
  applyStop(): Pick<ApplyStop, "refusal" | "behind"> | undefined;
  /** A unary RPC to another server. */
  rpc(addr: string, method: string, args: unknown, opts: { timeoutMs: number; region?: string; authToken?: string }): Promise<unknown>;
}

export class Router {
  constructor(private readonly h: RouterHost) {}

  async call(method: string, args: Record<string, unknown>, q: RoutedQuery): Promise<CallResult> {
    const t0 = performance.now();
    try {
      return await this.route(method, args, q);
    } finally {
      this.h.stats.observe("edgenode_rpc_call_ms", performance.now() - t0, { method }, "endpoint call latency (ms)");
    }
  }

  /** The query meta of an answer at `index`: whether a leader is known and how recently it was heard. */
  meta(index: number): QueryMeta {
    const d = this.h.raft();
    const behind = this.h.applyStop()?.behind();
    return {
      index,
      knownLeader: Boolean(d?.leader),
      lastContactMs: !d ? 0 : d.isLeader ? 0 : d.lastContact ? performance.now() - d.lastContact : 0,
      ...(behind === undefined ? {} : { behind }),
    };
  }

  /** `holdUntil`: set once a write was refused for a moving leadership; bounds its retries (see retryWrite). */
  private async route(method: string, args: Record<string, unknown>, q: RoutedQuery, holdUntil?: number): Promise<CallResult> {
    let ep: Endpoint | undefined;
    let parsed: Record<string, unknown> = {};
    const needsLeader = () => {
      ep = this.h.endpoints()[method];
      if (!ep) throw new EdgeError("NOT_FOUND", `unknown method ${method}`);
      const p = ep.args.safeParse(args);
      if (!p.success) {
        const issue = p.error.issues[0];
        throw new EdgeError("BAD_REQUEST", `invalid arguments for ${method}: ${issue?.path.join(".") || "args"}: ${issue?.message}`);
      }
      parsed = p.data as Record<string, unknown>;
      return ep.kind === "write" || (ep.kind === "read" && !q.stale);
    };
    return this.h.placement.run(q, needsLeader, {
      here: () => this.runHere(method, args, q, ep!, parsed, holdUntil),
      send: (addr, hops) => this.forwardTo(addr, method, args, { ...q, hops }),
    });
  }

  private async runHere(
    method: string,
    args: Record<string, unknown>,
    q: RoutedQuery,
    ep: Endpoint,
    parsed: Record<string, unknown>,
    holdUntil: number | undefined,
  ): Promise<CallResult> {
    if (ep.kind === "read" && !q.stale) {
      const refused = this.h.applyStop()?.refusal(`a consistent read of ${method}`);
      if (refused) throw refused;
      await this.h.raft()!.readBarrier();
    }
    // The server that executes the call decides on permissions (a forwarded call carries the token).
    const authorize = this.h.authorize();
    if (authorize) await authorize(method, parsed, q.token);
    try {
      return await ep.handler(parsed as never, this.endpointContext(q));
    } catch (e) {
      if (ep.kind !== "write" || !retryOnNextLeader(e)) throw e;
      return this.retryWrite(method, args, q, e, holdUntil ?? performance.now() + LEADER_WAIT_MS);
    }
  }

  /**
   * A write the raft core refused before appending it, because leadership is moving: wait for the move
   * (a transfer settles within an election timeout) and route it again, to the new leader or, if the
   * transfer was abandoned, here. Bounded by the leader hold and, once forwarded, by the hop limit.
   */
  private async retryWrite(
    method: string,
    args: Record<string, unknown>,
    q: RoutedQuery,
    refusal: unknown,
    holdUntil: number,
  ): Promise<CallResult> {
    const left = holdUntil - performance.now();
    if (left <= 0) throw refusal;
    this.h.stats.inc(
      "edgenode_rpc_write_retries_total",
      { method },
      1,
      "writes routed again after the leader refused them while leadership moved",
    );
    this.h.log.debug("write refused while leadership moves; routing it again", { method, reason: (refusal as Error).message });
    if (this.h.raft()?.isLeader) await this.h.waitForLeaderChange(Math.min(left, this.h.transferSettleMs));
    return this.route(method, args, q, holdUntil);
  }

  private endpointContext(q: QueryOptions): EndpointContext {
    return {
      q,
      propose: (cmd) => this.h.propose(cmd),
      blocking: (table, key, run) => this.blocking(q, table, key, run),
    };
  }

  private async blocking<T>(
    q: QueryOptions,
    table: TableName,
    key: string | undefined,
    run: () => { reply: T; index: number },
  ): Promise<CallResult<T>> {
    const first = run();
    if (q.minIndex === undefined || first.index > q.minIndex) return { reply: first.reply, meta: this.meta(first.index) };
    // It would wait for a change this server, stopped at an entry it does not understand, will not apply.
    const refused = this.h.applyStop()?.refusal(`a blocking query past index ${q.minIndex}`);
    if (refused) throw refused;
    const wait = q.waitMs ?? DEFAULT_WAIT_MS;
    const deadline = performance.now() + wait + Math.random() * (wait / JITTER_FRACTION);
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      const ac = new AbortController();
      try {
        await withDeadline(
          Promise.race([this.h.state().watch(table, key, ac.signal), this.h.swapped(ac.signal)]),
          remaining,
          "blocking wait",
        ).catch(() => {});
      } finally {
        ac.abort();
      }
      const r = run();
      if (r.index > q.minIndex) return { reply: r.reply, meta: this.meta(r.index) };
    }
    const r = run();
    return { reply: r.reply, meta: this.meta(r.index) };
  }

  private async forwardTo(addr: string, method: string, args: Record<string, unknown>, q: RoutedQuery): Promise<CallResult> {
    this.h.stats.inc("edgenode_rpc_forwarded_total", { method });
    // The RPC header carries the timeout as an integer (ms); wait/16 is fractional for most waits.
    // A blocking query may wait its whole wait (plus jitter); anything else gets a bound that covers a
    // leader's commit under load but fails a call to a stalled leader in seconds, not minutes.
    const blockingMs = q.minIndex !== undefined ? (q.waitMs ?? DEFAULT_WAIT_MS) * (1 + 1 / JITTER_FRACTION) : 0;
    const timeoutMs = Math.ceil(blockingMs + FORWARD_TIMEOUT_MS);
    return (await this.h.rpc(
      addr,
      "Endpoint.Call",
      { method, args, q },
      { timeoutMs, ...(q.region ? { region: q.region } : {}), ...(q.token ? { authToken: q.token } : {}) },
    )) as CallResult;
  }
}
