// The typed HTTP client of the agent API: address, token, region, TLS, query options, the
// X-Edgenode-* meta headers, bounded response bodies and the ApiError every failure becomes.
import { concatBytes } from "../lib/bytes.ts";
import { codeOfStatus, EdgeError } from "../lib/errors.ts";

/** Bodies other than snapshot downloads are read up to this many bytes; a larger answer is an error. */
export const MAX_RESPONSE_BYTES = 16 << 20;
/** Error bodies (plain text) are cut to this for messages. */
const MAX_ERROR_TEXT = 4096;
/** A request that is not a blocking query or a stream gets this long by default. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** A blocking query may be held this long beyond its wait (server jitter is at most wait/16). */
const BLOCKING_SLACK_MS = 30_000;

export const DEFAULT_ADDRESS = "http://127.0.0.1:4646";

export interface TlsOptions {
  /** PEM text of the CA certificate(s) that sign the agent's certificate. */
  ca?: string;
  /** PEM text of a client certificate and its key, for mutual TLS. */
  cert?: string;
  key?: string;
  /** Do not verify the agent's certificate (testing only). */
  skipVerify?: boolean;
}

export interface ClientOptions {
  address?: string;
  token?: string;
  region?: string;
  tls?: TlsOptions;
  /** Replaces global fetch (tests). */
  fetch?: typeof fetch;
}

export interface QueryOptions {
  /** Let any server answer from its own state (?stale). */
  stale?: boolean;
  /** Blocking query: return once the result's index is above this. */
  index?: number;
  /** Blocking query wait in ms (sent as "<n>ms"). */
  waitMs?: number;
  /** Overrides the client's region for this request. */
  region?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface QueryMeta {
  index?: number;
  knownLeader?: boolean;
  lastContactMs?: number;
  nextToken?: string;
}

export interface Response_<T> {
  body: T;
  meta: QueryMeta;
  status: number;
}

/** A non-2xx answer (status and the server's plain-text message) or a failure to reach the agent (status 0). */
export class ApiError extends EdgeError {
  readonly #status: number;
  /** The parsed JSON body when the server answered JSON (e.g. the current variable on a 409). */
  readonly body: unknown;
  constructor(status: number, message: string, body?: unknown) {
    super(codeOfStatus(status), message);
    this.name = "ApiError";
    this.#status = status;
    this.body = body;
  }
  /** The HTTP status the agent answered (0: it was not reached), which the code only summarises. */
  override get status(): number {
    return this.#status;
  }
}

export function readMeta(h: Headers): QueryMeta {
  const m: QueryMeta = {};
  const idx = h.get("x-edgenode-index");
  if (idx !== null && /^\d+$/.test(idx)) m.index = Number(idx);
  const kl = h.get("x-edgenode-knownleader");
  if (kl !== null) m.knownLeader = kl === "true";
  const lc = h.get("x-edgenode-lastcontact");
  if (lc !== null && /^\d+$/.test(lc)) m.lastContactMs = Number(lc);
  const nt = h.get("x-edgenode-nexttoken");
  if (nt) m.nextToken = nt;
  return m;
}

/** Reads a body up to `limit` bytes; a longer body is an error rather than unbounded memory. */
export async function readBounded(res: Response, limit: number): Promise<Uint8Array> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await res.body?.cancel().catch(() => {});
    throw new ApiError(res.status, `response body of ${declared} bytes exceeds the client's limit of ${limit} bytes`);
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new ApiError(res.status, `response body exceeds the client's limit of ${limit} bytes`);
    }
    parts.push(value);
  }
  return concatBytes(parts);
}

export type Method = "GET" | "PUT" | "POST" | "DELETE";

export interface RequestSpec {
  method: Method;
  /** Path below the address, starting with /v1/. */
  path: string;
  params?: Record<string, string | number | boolean | undefined>;
  /** JSON-encoded when not a stream. */
  json?: unknown;
  stream?: ReadableStream<Uint8Array>;
  query?: QueryOptions;
}

export class ApiClient {
  readonly address: string;
  readonly token: string | undefined;
  readonly region: string | undefined;
  private readonly tls: TlsOptions | undefined;
  private readonly doFetch: typeof fetch;

  constructor(opts: ClientOptions = {}) {
    const address = (opts.address ?? DEFAULT_ADDRESS).replace(/\/+$/, "");
    let u: URL;
    try {
      u = new URL(address);
    } catch {
      throw new ApiError(0, `invalid address "${address}": expected a URL such as ${DEFAULT_ADDRESS}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new ApiError(0, `invalid address "${address}": the scheme must be http or https`);
    this.address = address;
    this.token = opts.token || undefined;
    this.region = opts.region || undefined;
    this.tls = opts.tls;
    this.doFetch = opts.fetch ?? fetch;
  }

  url(path: string, params: RequestSpec["params"] = {}, q: QueryOptions = {}): string {
    const u = new URL(this.address + path);
    const region = q.region ?? this.region;
    if (region) u.searchParams.set("region", region);
    if (q.stale) u.searchParams.set("stale", "");
    if (q.index !== undefined) {
      u.searchParams.set("index", String(q.index));
      if (q.waitMs !== undefined) u.searchParams.set("wait", `${Math.max(0, Math.round(q.waitMs))}ms`);
    }
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === false) continue;
      u.searchParams.set(k, v === true ? "" : String(v));
    }
    // `?stale` and `?lock-acquire` are flags the server checks for presence: drop the "=".
    return u.toString().replace(/=(?=&|$)/g, "");
  }

  /** Sends a request; a non-2xx status becomes an ApiError. The caller owns the response body. */
  async send(spec: RequestSpec): Promise<Response> {
    const q = spec.query ?? {};
    const headers: Record<string, string> = {};
    if (this.token) headers["X-Edgenode-Token"] = this.token;
    let body: ReadableStream<Uint8Array> | string | undefined;
    if (spec.stream) {
      body = spec.stream;
      headers["Content-Type"] = "application/octet-stream";
    } else if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers["Content-Type"] = "application/json";
    }
    const signals: AbortSignal[] = [];
    if (q.signal) signals.push(q.signal);
    const timeout =
      q.timeoutMs ?? (spec.stream ? undefined : q.index !== undefined ? (q.waitMs ?? 5 * 60_000) + BLOCKING_SLACK_MS : DEFAULT_TIMEOUT_MS);
    if (timeout !== undefined && timeout > 0) signals.push(AbortSignal.timeout(timeout));
    const init: RequestInit & { tls?: Record<string, unknown> } = { method: spec.method, headers };
    if (body !== undefined) init.body = body;
    if (signals.length) init.signal = signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
    if (this.tls) {
      const t: Record<string, unknown> = {};
      if (this.tls.ca) t.ca = this.tls.ca;
      if (this.tls.cert) t.cert = this.tls.cert;
      if (this.tls.key) t.key = this.tls.key;
      if (this.tls.skipVerify) t.rejectUnauthorized = false;
      init.tls = t;
    }
    const url = this.url(spec.path, spec.params, q);
    let res: Response;
    try {
      res = await this.doFetch(url, init);
    } catch (e) {
      const err = e as Error;
      if (err.name === "TimeoutError") throw new ApiError(0, `request to ${this.address} timed out after ${timeout} ms`);
      if (err.name === "AbortError") throw new ApiError(0, `request to ${this.address} was cancelled`);
      throw new ApiError(0, `cannot reach the agent at ${this.address}: ${err.message}`);
    }
    if (res.status >= 200 && res.status < 300) return res;
    const raw = await readBounded(res, MAX_ERROR_TEXT * 16).catch(() => new Uint8Array(0));
    const text = new TextDecoder().decode(raw).trim();
    let parsed: unknown;
    if ((res.headers.get("content-type") ?? "").includes("json")) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    const shown = parsed !== undefined ? conflictText(res.status, parsed) : text.slice(0, MAX_ERROR_TEXT);
    throw new ApiError(res.status, `Unexpected response code: ${res.status} (${shown || res.statusText || "no message"})`, parsed);
  }

  /** A request whose answer is JSON of bounded size. */
  async json<T>(spec: RequestSpec): Promise<Response_<T>> {
    const res = await this.send(spec);
    const raw = await readBounded(res, MAX_RESPONSE_BYTES);
    const text = new TextDecoder().decode(raw);
    let body: unknown;
    try {
      body = text.trim() === "" ? undefined : JSON.parse(text);
    } catch (e) {
      throw new ApiError(res.status, `invalid JSON in the response to ${spec.method} ${spec.path}: ${(e as Error).message}`);
    }
    return { body: body as T, meta: readMeta(res.headers), status: res.status };
  }
}

/** A 409 answers with the current object as JSON: say so rather than dumping it. */
function conflictText(status: number, body: unknown): string {
  if (status === 409 && body && typeof body === "object" && "ModifyIndex" in body) {
    return `conflict: the current ModifyIndex is ${String((body as { ModifyIndex: unknown }).ModifyIndex)}`;
  }
  return JSON.stringify(body).slice(0, MAX_ERROR_TEXT);
}
