// Snapshot save (a streamed download with its Digest and index) and restore (a streamed upload).
import { ApiError, readMeta, type ApiClient, type QueryMeta } from "./client.ts";

export interface SnapshotDownload {
  /** Raft index of the snapshot (X-Edgenode-Index). */
  index: number;
  /** base64 SHA-256 the server declares for the body (Digest: sha-256=...). */
  digest: string;
  /** Content-Length when the server sent one. */
  size: number | undefined;
  /** The body, unbuffered: the caller streams it to disk. */
  body: ReadableStream<Uint8Array>;
  meta: QueryMeta;
}

/** Parses `Digest: sha-256=<base64>` (RFC 3230; other algorithms may be listed beside it). */
export function parseDigest(h: string | null): string | undefined {
  if (!h) return undefined;
  for (const part of h.split(",")) {
    const m = /^\s*sha-256=([A-Za-z0-9+/]+={0,2})\s*$/i.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

export async function snapshotSave(c: ApiClient, opts: { stale?: boolean; signal?: AbortSignal } = {}): Promise<SnapshotDownload> {
  // No overall timeout: a large snapshot takes as long as it takes.
  const res = await c.send({
    method: "GET",
    path: "/v1/operator/snapshot",
    query: { stale: opts.stale, timeoutMs: 0, signal: opts.signal },
  });
  const fail = async (msg: string) => {
    await res.body?.cancel().catch(() => {});
    return new ApiError(res.status, msg);
  };
  const digest = parseDigest(res.headers.get("digest"));
  if (!digest) throw await fail(`the server sent no "Digest: sha-256=..." header (got ${JSON.stringify(res.headers.get("digest"))})`);
  const idx = res.headers.get("x-edgenode-index");
  if (idx === null || !/^\d+$/.test(idx) || !Number.isSafeInteger(Number(idx)))
    throw await fail(`the server sent no valid X-Edgenode-Index header (got ${JSON.stringify(idx)})`);
  if (!res.body) throw await fail("the server sent no body");
  const len = res.headers.get("content-length");
  return {
    index: Number(idx),
    digest,
    size: len !== null && /^\d+$/.test(len) ? Number(len) : undefined,
    body: res.body,
    meta: readMeta(res.headers),
  };
}

export interface RestoreReply {
  Index?: number;
  [k: string]: unknown;
}

/** Uploads a snapshot as a stream; with dryRun the servers only verify it and say what it holds. */
export async function snapshotRestore(
  c: ApiClient,
  body: ReadableStream<Uint8Array>,
  opts: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<RestoreReply> {
  const r = await c.json<RestoreReply>({
    method: "PUT",
    path: "/v1/operator/snapshot",
    params: { "dry-run": opts.dryRun || undefined },
    stream: body,
    query: { timeoutMs: 0, signal: opts.signal },
  });
  if (!r.body || typeof r.body !== "object")
    throw new ApiError(r.status, "invalid response to the snapshot restore: expected a JSON object");
  return r.body;
}

/** One save or restore a server took part in (GET /v1/operator/snapshot/history). */
export interface SnapshotOp {
  Kind: "save" | "restore";
  /** received: the server the client talked to; leader: the leader that ran a restore; scheduled: a backup. */
  Role: "received" | "leader" | "scheduled";
  DryRun?: boolean;
  Start: string;
  DurationMs: number;
  Bytes: number;
  Outcome: "ok" | "error";
  Error?: { Code: string; Message: string };
  Index: number;
}

export interface SnapshotProgress {
  Kind: "save" | "restore";
  Role: SnapshotOp["Role"];
  DryRun?: boolean;
  Start: string;
  Phase: "received" | "verified" | "staged" | "committed" | "swapped";
  Bytes: number;
  StagedOn?: number;
}

export interface SnapshotHistory {
  Servers: {
    ID: string;
    Node: string;
    Address: string;
    /** Newest first. */
    Ops: SnapshotOp[];
    InProgress?: SnapshotProgress;
    Scheduled: { Name: string; Index: number; Size: number; Modified: string }[];
    /** Why this server's history is missing (it did not answer). */
    Error?: string;
  }[];
}

export async function snapshotHistory(c: ApiClient): Promise<SnapshotHistory> {
  const r = await c.json<SnapshotHistory>({ method: "GET", path: "/v1/operator/snapshot/history" });
  if (!r.body || !Array.isArray(r.body.Servers))
    throw new ApiError(r.status, "invalid response to GET /v1/operator/snapshot/history: no Servers");
  return r.body;
}
