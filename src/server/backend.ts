// What the HTTP layer needs from the agent: one call per endpoint, in the shape
// of the internal RPC (Nomad's model: HTTP parses and validates, then makes the
// same call a forwarded request would). server/ implements it; tests fake it.
import type { z } from "zod";
import type { Acl } from "./acl.ts";
import type { CallResult, Endpoint, QueryMeta, QueryOptions } from "./endpoints.ts";
import type { StateHash } from "./state_hash.ts";
import type { autopilotEndpoints } from "./autopilot_endpoints.ts";
import type { operatorEndpoints } from "./operator_endpoints.ts";
import type { raftStatsEndpoints } from "./raft_stats.ts";
import type { varEndpoints } from "./var_endpoints.ts";

export type { CallResult, QueryMeta, QueryOptions } from "./endpoints.ts";

export interface SnapshotDownload {
  index: number;
  size: number;
  /** base64 SHA-256 of the body. */
  digest: string;
  body: ReadableStream<Uint8Array>;
  meta: QueryMeta;
}

export interface Backend {
  /**
   * Invoke an endpoint by name (e.g. "Var.Get"), locally or forwarded to the leader or region. By
   * name, as Endpoint.Call carries it between servers; callers in this process use `typedCall`.
   */
  call(method: string, args: Record<string, unknown>, q: QueryOptions): Promise<CallResult>;
  snapshotSave(q: QueryOptions): Promise<SnapshotDownload>;
  snapshotRestore(body: ReadableStream<Uint8Array>, q: QueryOptions & { dryRun: boolean; signal: AbortSignal }): Promise<unknown>;
  /** Local facts that never forward. */
  self(): Record<string, unknown>;
  health(): { ok: boolean; message: string };
  /** A digest of this server's state at its applied index (state_hash.ts). */
  stateHash?(): StateHash;
  metrics(format: "json" | "prometheus"): string | Record<string, unknown>;
  /** Counts an HTTP request for the metrics. */
  observeHttp?(route: string, method: string, status: number): void;
}

/** The endpoint table callers may name: its types come from the endpoints' own schemas and handlers. */
type Table = ReturnType<typeof varEndpoints> &
  ReturnType<typeof operatorEndpoints> &
  ReturnType<typeof autopilotEndpoints> &
  ReturnType<typeof raftStatsEndpoints> &
  ReturnType<Acl["endpoints"]>;

export type Method = keyof Table & string;
/** What a caller sends to `M`: the input of the schema the router parses it with. */
export type Args<M extends Method> = z.input<Table[M]["args"]>;
/** What `M` answers: its handler's reply. */
export type Reply<M extends Method> = Table[M] extends Endpoint<z.ZodType, infer R> ? R : never;

export type TypedCall = <M extends Method>(method: M, args: Args<M>, q: QueryOptions) => Promise<CallResult<Reply<M>>>;

/**
 * `b.call` checked against the endpoint table. The one cast: the server routes `method` to the
 * endpoint registered under that name, whose handler the table types, after parsing `args` with
 * its schema; a forwarded call returns what the same handler answered on another server.
 */
export function typedCall(b: Backend): TypedCall {
  return <M extends Method>(method: M, args: Args<M>, q: QueryOptions) => b.call(method, args, q) as Promise<CallResult<Reply<M>>>;
}
