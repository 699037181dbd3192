// The RPC port's method table, apart from raft (PeerTransport registers that): forwarded endpoint
// calls, discovery and join for formation, and the snapshot save/restore streams between servers.
// Arguments are validated here, at the edge; the work is done behind the host.
import { z } from "zod";
import type { CallResult, QueryOptions } from "./backend.ts";
import { EdgeError } from "../lib/errors.ts";
import { RAFT_STATS_RPC } from "./raft_stats.ts";
import type { RpcServer } from "../transport/rpc_server.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";

type ForwardedQuery = QueryOptions & { hops?: number };

const serverId = z.string().min(1).max(256);
const address = z.string().min(1).max(512);
const joinArgs = z.object({ id: serverId, address, name: z.string().max(256) });
const discoverArgs = z.object({ id: z.string().max(256), address: z.string().max(512), name: z.string().max(256) });
const stagedId = z.string().max(128);

const querySchema = z.object({
  region: z.string().max(128).optional(),
  token: z.string().max(256).optional(),
  stale: z.boolean().optional(),
  minIndex: z.number().int().nonnegative().optional(),
  waitMs: z.number().nonnegative().max(600_000).optional(),
  hops: z.number().int().nonnegative().max(8).optional(),
});

/** The snapshot streams between servers (the save and restore modules serve them). */
interface SnapshotMethods {
  save(q: ForwardedQuery, stream: RpcStream, mode: "stream" | undefined): Promise<void>;
  restore(args: { dryRun: boolean; q: ForwardedQuery }, stream: RpcStream): Promise<void>;
  stage(args: { id: string; sha256?: string | undefined; size?: number | undefined }, stream: RpcStream): Promise<void>;
  fetchStaged(args: { id: string }, stream: RpcStream): Promise<void>;
  /** How far this server's state machine has applied. */
  applied(): number;
  unstage(args: { id: string }): Promise<unknown>;
  /** This server's record of the saves and restores it took part in (snapshot_history.ts). */
  history(): Promise<unknown>;
}

/** What the method table needs from the server. */
export interface RpcMethodsHost {
  /** Runs an endpoint here, on the leader or in another region. */
  call(method: string, args: Record<string, unknown>, q: ForwardedQuery): Promise<CallResult>;
  /** Cluster.Discover's answer (Formation.discover). */
  discover(a: z.infer<typeof discoverArgs>): unknown;
  /** A joining server's name, remembered before its join is proposed. */
  nameServer(id: string, name: string): void;
  /** Status.Versions' answer: this server's release and the newest formats it reads (versions.ts). */
  versions(): unknown;
  /** Status.RaftStats' answer: this server's raft progress and cluster id (raft_stats.ts). */
  raftStats(): unknown;
  readonly snapshot: SnapshotMethods;
}

export function registerRpcMethods(rpc: RpcServer, host: RpcMethodsHost): void {
  rpc.unary(
    "Endpoint.Call",
    z.object({ method: z.string().max(128), args: z.record(z.string(), z.unknown()), q: querySchema }),
    async (a) => host.call(a.method, a.args, stripUndefined(a.q)),
  );
  rpc.unary("Cluster.Discover", discoverArgs, async (a) => host.discover(a));
  rpc.unary("Status.Versions", z.object({}), async () => host.versions());
  rpc.unary(RAFT_STATS_RPC, z.object({}), async () => host.raftStats());
  rpc.unary("Cluster.Join", joinArgs, async (a, ctx) => {
    // A key holder joins as the server its handshake named, not as another one.
    if (ctx.peer.kind === "key" && ctx.peer.serverId !== a.id)
      throw new EdgeError("PERMISSION_DENIED", `a session of server ${ctx.peer.serverId} cannot join server ${a.id}`);
    host.nameServer(a.id, a.name);
    const r = await host.call("Cluster.AddNonvoter", a, {});
    return r.reply;
  });
  const snap = host.snapshot;
  rpc.stream("Snapshot.Save", z.object({ q: querySchema, mode: z.literal("stream").optional() }), async (a, _ctx, stream) => {
    await snap.save(stripUndefined(a.q), stream, a.mode);
  });
  rpc.stream("Snapshot.Restore", z.object({ dryRun: z.boolean(), q: querySchema }), async (a, _ctx, stream) => {
    await snap.restore({ dryRun: a.dryRun, q: stripUndefined(a.q) }, stream);
  });
  rpc.stream(
    "Snapshot.Stage",
    // A pipelining leader knows neither size nor digest when it opens the stream: its peers answer with them.
    z.object({
      id: stagedId,
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
      size: z.number().int().nonnegative().optional(),
    }),
    async (a, _ctx, stream) => {
      await snap.stage(a, stream);
    },
  );
  rpc.stream("Snapshot.FetchStaged", z.object({ id: stagedId }), async (a, _ctx, stream) => {
    await snap.fetchStaged(a, stream);
  });
  // How far this server's state machine has applied: a staged file is dropped only once every server has
  // applied its restore (cleanupStaged).
  rpc.unary("Snapshot.Applied", z.object({}), async () => ({ Applied: snap.applied() }));
  // The leader gave up on a restore before proposing it (too few servers staged it): drop what it staged here.
  rpc.unary("Snapshot.Unstage", z.object({ id: stagedId }), async (a) => snap.unstage(a));
  // One server's part of GET /v1/operator/snapshot/history (the answering server asks every server).
  rpc.unary("Snapshot.History", z.object({}), async () => snap.history());
}

/** The arguments of Cluster.AddNonvoter, the endpoint a join runs on the leader. */
export const addNonvoterArgs = joinArgs;

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}
