// What the HTTP layer needs from the agent: one call per endpoint, in the shape
// of the internal RPC (Nomad's model: HTTP parses and validates, then makes the
// same call a forwarded request would). server/ implements it; tests fake it.

export interface QueryOptions {
  region?: string;
  token?: string;
  /** Serve from this server's own state instead of the leader's (?stale). */
  stale?: boolean;
  /** Blocking query: return once the result's index is above this (?index=N). */
  minIndex?: number;
  /** Blocking query wait in ms (?wait=D), already clamped. */
  waitMs?: number;
}

export interface QueryMeta {
  index: number;
  knownLeader: boolean;
  lastContactMs: number;
}

export interface CallResult<T = unknown> {
  reply: T;
  meta?: QueryMeta;
}

export interface SnapshotDownload {
  index: number;
  size: number;
  /** base64 SHA-256 of the body. */
  digest: string;
  body: ReadableStream<Uint8Array>;
  meta: QueryMeta;
}

export interface Backend {
  /** Invoke an endpoint by name (e.g. "Var.Get"), locally or forwarded to the leader or region. */
  call(method: string, args: Record<string, unknown>, q: QueryOptions): Promise<CallResult>;
  snapshotSave(q: QueryOptions): Promise<SnapshotDownload>;
  snapshotRestore(body: ReadableStream<Uint8Array>, q: QueryOptions & { dryRun: boolean; signal: AbortSignal }): Promise<unknown>;
  /** Local facts that never forward. */
  self(): Record<string, unknown>;
  health(): { ok: boolean; message: string };
  metrics(format: "json" | "prometheus"): string | Record<string, unknown>;
  /** Counts an HTTP request for the metrics. */
  observeHttp?(route: string, method: string, status: number): void;
}
