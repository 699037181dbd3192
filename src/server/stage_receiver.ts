// A staging peer's end of a restore (Snapshot.Stage): the leader streams the upload on to each peer as
// it arrives, tailing its own spool, so the peers receive it while the leader does. The stream is the
// file's bytes, then an empty chunk (no more bytes: the leader's upload ended), then the End frame (the
// leader verified the whole file and keeps it). In the same pass as receiving, the peer writes the bytes
// to a temp file and feeds them to the snapshot reader and the state's build: the state is ready when
// the last byte arrives, not one pass over the file later, so the restore entry's apply is a swap. On
// the End frame the file becomes the staged file (durable) and the peer answers with its size and
// SHA-256, which the leader compares with its own. Anything else (an abort, a flaw the reader finds, a
// stream cut) removes the temp file and lets the build go: nothing is left behind.
//
// Why build while receiving: the leader proposes once a quorum of voters answered, and a voter answers
// once its file is durable and its state built; building after answering (as before) put one more pass
// over the file between the commit and every follower serving the new state. Each peer reads at its own
// pace from the leader's file, so a slow builder delays only its own answer, not the upload nor the
// others', and the leader waits for a quorum of answers, not for every peer. A server relaying the upload to the leader only spools and hashes while receiving, and builds
// from its file once the upload has passed through (answering once the file is durable, its apply waiting
// for that build): building while relaying would hold the whole new state while the upload still passes
// through it, whose memory stays bounded (snapshot_memory.test.ts).
import { createHash } from "node:crypto";
import { encode } from "../lib/codec.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { FORMAT_VERSION, type SnapshotHeader, SnapshotFormatError } from "../snapshot/format.ts";
import { fileChunks, readSnapshot, readSnapshotHeader } from "../snapshot/reader.ts";
import { RestoreError } from "../state/restore.ts";
import { StateStore } from "../state/state_store.ts";
import { TABLES } from "../state/tables.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { owned } from "./chunk_ownership.ts";
import { pausable, type PhasePoint } from "./restore_phase.ts";
import { GrowingFile } from "./growing_file.ts";
import { abandonable, type Built, type PreparedStates } from "./restore_prepared.ts";
import { checkStagedId, SpoolThrough, type StagedSnapshots } from "./staged_snapshots.ts";

/** A peer's answer to a staging, in its one reply frame: what it holds, for the leader to compare. */
export interface StageReply {
  Size: number;
  Sha256: string;
}

/** Snapshot.Stage's arguments. A leader that knows size and digest up front (an older one) sends them. */
export interface StageArgs {
  id: string;
  sha256?: string | undefined;
  size?: number | undefined;
}

export interface StageHost {
  readonly log: Logger;
  readonly staged: StagedSnapshots;
  readonly prepared: PreparedStates;
  readonly phase: PhasePoint;
  /** Whether this server is relaying a restore upload to its leader right now. */
  relaying(): boolean;
  /** Whether the restore with this id was applied here. */
  appliedHere(id: string): boolean;
}

export class StageReceiver {
  constructor(private readonly h: StageHost) {}

  /** RPC: the leader stages restore `args.id` here. */
  async receive(args: StageArgs, stream: RpcStream): Promise<void> {
    const h = this.h;
    const id = args.id;
    checkStagedId(id);
    if (h.prepared.isDropped(id)) throw new EdgeError("ABORTED", `the leader gave up on restore ${id}`);
    if (h.staged.has(id)) throw new EdgeError("CONFLICT", `restore ${id} is staged here already`);
    const t0 = performance.now();
    const sp = await SpoolThrough.create(h.staged.tempPath(id));
    const frames = stream[Symbol.asyncIterator]();
    let ended = false;
    // The file's bytes: every chunk up to the empty one, or up to the End frame from a leader that sends none.
    async function* bytes(): AsyncGenerator<Uint8Array> {
      for (;;) {
        const f = await frames.next();
        if (f.done) {
          ended = true;
          return;
        }
        if (f.value.byteLength === 0) return;
        yield f.value;
      }
    }
    const building = !h.relaying();
    let kept = false;
    try {
      let got: { size: number; sha256: string };
      if (building) {
        const b = await h.prepared.receive(id, (superseded) => this.build(sp, bytes(), superseded));
        got = { size: b.size, sha256: b.sha256 };
        h.log.info("restore: new state built while receiving", {
          id,
          bytes: b.size,
          records: b.records,
          ms: Math.round(performance.now() - t0),
        });
      } else {
        got = await this.spoolOnly(sp, bytes());
        // The upload has passed through (the leader's ended): build from the file now, while the leader
        // finishes and the file is put in place, rather than after answering. A handle opened now reads
        // the file wherever it is renamed to; its records are checked again against the digest.
        const file = new GrowingFile(sp.path);
        const r = await file.reader();
        file.end(got.size);
        h.prepared.build(id, got.sha256, closing(r));
      }
      // The End frame: the leader verified the whole file too, and keeps it.
      if (!ended && !(await frames.next()).done) throw new EdgeError("BAD_REQUEST", `staging ${id}: bytes after the end of the file`);
      if (args.size !== undefined && args.sha256 !== undefined && (got.size !== args.size || got.sha256 !== args.sha256)) {
        throw new EdgeError(
          "BAD_SNAPSHOT",
          `staged snapshot ${id} does not match: got ${got.size} bytes sha256 ${got.sha256}, expected ${args.size} bytes sha256 ${args.sha256}`,
        );
      }
      if (!building) checkKnown(await readSnapshotHeader(fileChunks(sp.path)));
      if (h.prepared.isDropped(id)) throw new EdgeError("ABORTED", `the leader gave up on restore ${id}`);
      await h.staged.adopt(id, sp.path, got.sha256);
      kept = true;
      h.log.info("restore: staged here", { id, bytes: got.size, ms: Math.round(performance.now() - t0) });
      if (pausable) await h.phase("stage", { id });
      // Applied here already (from a fetched copy, the staging having outlived the leader's deadline):
      // the state built for it is held for nothing.
      if (h.appliedHere(id)) h.prepared.cancel(id);
      if (args.sha256 === undefined) await stream.send(encode({ Size: got.size, Sha256: got.sha256 } satisfies StageReply));
      await stream.end();
    } catch (e) {
      // Staged durably, the file stays (the restore may commit without this answer: its apply then uses
      // it; if not, the day-old sweep or Snapshot.Unstage removes it). Anything short of that goes.
      if (!kept) {
        h.prepared.cancel(id);
        await frames.return?.(undefined).catch(() => undefined);
        await sp.abort();
        h.log.warn("restore: staging here failed; nothing kept", { id, bytes: sp.bytes, error: (e as Error).message });
      }
      throw e instanceof RestoreError || e instanceof SnapshotFormatError
        ? new EdgeError("BAD_SNAPSHOT", `invalid snapshot: ${e.message}`)
        : e;
    }
  }

  /** Spool, verify and build in one pass; the file made durable (not yet in place). */
  private async build(
    sp: SpoolThrough,
    bytes: AsyncIterable<Uint8Array>,
    superseded: () => boolean,
  ): Promise<Built & { size: number; records: number }> {
    const reader = readSnapshot(sp.through(bytes), { release: owned("rpc") });
    checkKnown(await reader.header);
    const store = await StateStore.restore(abandonable(reader.records, superseded), 1);
    const v = reader.result;
    if (!v) throw new SnapshotFormatError("the snapshot's records ended before its checks completed");
    const size = await sp.finish();
    return { store, sha256: v.sha256, size, records: v.records };
  }

  /** Spool and hash only (this server is relaying the upload); the file made durable (not yet in place). */
  private async spoolOnly(sp: SpoolThrough, bytes: AsyncIterable<Uint8Array>): Promise<{ size: number; sha256: string }> {
    const hash = createHash("sha256");
    for await (const c of sp.through(bytes)) hash.update(c);
    return { size: await sp.finish(), sha256: hash.digest("hex") };
  }
}

/** `r`'s chunks, its handle closed once they are read or given up. */
async function* closing(r: { chunks: AsyncIterable<Uint8Array>; close(): Promise<void> }): AsyncGenerator<Uint8Array> {
  try {
    yield* r.chunks;
  } finally {
    await r.close();
  }
}

/** A file this server cannot read (a newer format, a table it does not know) fails the staging. */
function checkKnown(header: SnapshotHeader): void {
  if (header.formatVersion > FORMAT_VERSION)
    throw new EdgeError("BAD_SNAPSHOT", `snapshot format version ${header.formatVersion} is newer than this server's ${FORMAT_VERSION}`);
  const unknown = Object.keys(header.counts).filter((t) => !(TABLES as readonly string[]).includes(t) && header.counts[t] !== 0);
  if (unknown.length > 0) throw new EdgeError("BAD_SNAPSHOT", `snapshot holds tables this server does not know: ${unknown.join(", ")}`);
}
