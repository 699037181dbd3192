// The server's state machine around the StateStore: decodes committed entries,
// applies commands, writes raft snapshots from point-in-time views in the
// snapshot file format, and replaces the store from a snapshot file.
import { assert } from "../lib/assert.ts";
import { decode } from "../lib/codec.ts";
import { EdgeError } from "../lib/errors.ts";
import { VERSION } from "../lib/version.ts";
import type { Entry, SnapshotMeta } from "../raft/storage.ts";
import { readSnapshot } from "../snapshot/reader.ts";
import { encodeSnapshot, type EncodeOptions, type WriteResult, type WriterHeader } from "../snapshot/writer.ts";
import { StateStore } from "../state/state_store.ts";
import type { StateView } from "../state/state_view.ts";
import { notUnderstood, notUnderstoodError } from "./apply_stop.ts";
import { type AutopilotConfigOp, CommittedAutopilot } from "./autopilot_config.ts";
import { type ClusterVersionOp, CommittedVersion } from "./cluster_version.ts";

/** A snapshot restore, committed once a quorum staged its file (restore_leader.ts, restore_apply.ts). */
export type RestoreOp = { op: "restore"; snapshotId: string; sha256: string; size: number; now: number };
/** A test-only entry (features.ts "test-gated"), applied only by binaries built with the test features. */
export type TestGatedOp = { op: "test_gated"; value: string; feature?: "test-gated"; needs?: string };
/** Server-level operations carried in raft entries beside the state machine's own commands. */
export type ServerOp = RestoreOp | ClusterVersionOp | AutopilotConfigOp | TestGatedOp;
export type ServerOpKind = ServerOp["op"];
/** Applies one kind of server op at its entry's index; what it resolves with answers the proposal. */
export type ServerOpHandler<K extends ServerOpKind> = (index: number, op: Extract<ServerOp, { op: K }>) => Promise<unknown>;

export class Fsm {
  private store: StateStore;
  private swapListeners = new Set<() => void>();
  /**
   * Server ops by kind, registered by the modules that own them (a restore: restore_apply.ts), all before
   * raft starts: an op not registered when its entry applies is one this binary does not understand.
   */
  private readonly ops = new Map<string, (index: number, op: ServerOp) => Promise<unknown>>();
  /** The committed cluster version: replicated state kept beside the store, carried in snapshot headers. */
  readonly clusterVersion = new CommittedVersion();
  /** Autopilot's configuration as an operator set it (autopilot_config.ts), carried in snapshot headers. */
  readonly autopilot = new CommittedAutopilot();

  constructor(
    private readonly region: () => string,
    private readonly clusterId: () => string,
  ) {
    this.store = new StateStore();
    this.registerOp("cluster_version", async (index, op) => this.clusterVersion.apply(index, op));
    this.registerOp("autopilot_config", async (index, op) => this.autopilot.apply(index, op));
  }

  /** Entries whose op is `kind` are applied by `handler` instead of the state store. Once per kind. */
  registerOp<K extends ServerOpKind>(kind: K, handler: ServerOpHandler<K>): void {
    assert(!this.ops.has(kind), () => `server op ${kind} registered twice`);
    this.ops.set(kind, handler as (index: number, op: ServerOp) => Promise<unknown>);
  }

  get state(): StateStore {
    return this.store;
  }

  /**
   * A promise that resolves when the store is next replaced (restore or snapshot install), or when
   * `signal` aborts: a waiter that gives up must not stay listening until the next swap.
   */
  swapped(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const f = () => {
        this.swapListeners.delete(f);
        signal?.removeEventListener("abort", f);
        resolve();
      };
      this.swapListeners.add(f);
      signal?.addEventListener("abort", f, { once: true });
    });
  }

  replaceStore(next: StateStore): void {
    const old = this.store;
    this.store = next;
    old.abandon();
    for (const f of [...this.swapListeners]) f();
  }

  async apply(e: Entry): Promise<unknown> {
    let cmd: unknown;
    try {
      cmd = decode(e.data);
    } catch {
      // A committed entry that does not decode is corruption the checksums should have caught.
      throw new EdgeError("CORRUPT", `committed entry ${e.index} does not decode`);
    }
    // Not understood (apply_stop.ts): the applier stops here rather than refuse what others apply.
    const unknown = notUnderstood(e.index, cmd, (kind) => this.ops.has(kind));
    if (unknown) throw notUnderstoodError(unknown);
    const op = (cmd as { op?: unknown } | null)?.op;
    const serverOp = typeof op === "string" ? this.ops.get(op) : undefined;
    if (serverOp) return serverOp(e.index, cmd as ServerOp);
    const r = this.store.apply(e.index, cmd);
    if (r.ok) return r.value;
    throw new EdgeError(r.code, r.message, r.detail);
  }

  /** A snapshot file of `view` at raft index/term, as chunks; `result` (size, SHA-256) is set after the last. */
  snapshotChunks(
    view: StateView,
    meta: SnapshotMeta,
    snapshotId: string,
    result: WriteResult,
    options: EncodeOptions,
  ): AsyncGenerator<Uint8Array> {
    return encodeSnapshot(this.snapshotHeader(view, meta, snapshotId), view.records(), result, options);
  }

  /** The header of a raft snapshot of `view` at `meta` (also used to rewrite a restore's staged file). */
  snapshotHeader(view: StateView, meta: SnapshotMeta, snapshotId: string): WriterHeader {
    // Absent until a cluster_version entry is written: the file stays format 1, which 0.1.0 reads.
    const clusterVersion = this.clusterVersion.at(meta.index);
    // Only ever set once the cluster version allows it, so only in format 2 files.
    const autopilot = clusterVersion === undefined ? undefined : this.autopilot.at(meta.index);
    return {
      ...(clusterVersion === undefined ? {} : { clusterVersion }),
      ...(autopilot === undefined ? {} : { autopilot }),
      producer: VERSION,
      region: this.region(),
      clusterId: this.clusterId(),
      snapshotId,
      index: meta.index,
      term: meta.term,
      created: new Date().toISOString(),
      counts: view.counts(),
      config: meta.config,
    };
  }

  /**
   * Build a new store from snapshot file bytes (verified as read; a bad file throws before any swap).
   * The chunks are the reader's alone (a file read into fresh buffers): each is released once read.
   */
  async loadFrom(chunks: AsyncIterable<Uint8Array>, index: number): Promise<StateStore> {
    const reader = readSnapshot(chunks, { release: true });
    const header = await reader.header;
    const store = await StateStore.restore(reader.records, index);
    // Taken only with the state it came with (a bad file throws above, before anything changes here).
    this.clusterVersion.loaded(index, header.clusterVersion);
    this.autopilot.loaded(index, header.autopilot);
    return store;
  }
}
