// The leader's side of staging a restore on its peers, from the upload's first byte: one Snapshot.Stage
// stream per other server, each fed by its own reader tailing the leader's spool (growing_file.ts), so
// the upload is never paced by a peer and a peer that falls behind costs a file offset, not memory.
// Each stream carries the file's bytes, an empty chunk once the upload ended, and the End frame only
// once the leader has verified the whole file and made it durable (commit); each peer answers with the
// size and SHA-256 of what it holds durably (stage_receiver.ts). A leader that refuses the file, loses
// its client or fails aborts every stream: the peers keep nothing. After commit each peer must answer
// within the staging deadline; the leader waits for a quorum of voters only, and the rest go on in the
// background (a slower peer's apply then waits for its own build).
import { decode } from "../lib/codec.ts";
import { deadlineTimer } from "../lib/deadline.ts";
import { formatDuration } from "../lib/duration.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { RpcStream } from "../transport/rpc_stream.ts";
import { owned, sendAll } from "./chunk_ownership.ts";
import type { GrowingFile } from "./growing_file.ts";
import type { StageReply } from "./stage_receiver.ts";

const STAGE_MIN_TIMEOUT_MS = 30_000;
/** The staging deadline after commit grows with size at a pessimistic 10 MB/s. */
const STAGE_BYTES_PER_MS = 10_000;
const STAGE_OPEN_TIMEOUT_MS = 5_000;
/** A reply frame is a small map; anything bigger is not one. */
const MAX_REPLY_BYTES = 1024;

export interface FanoutHost {
  readonly log: Logger;
  selfId(): string;
  servers(): readonly { id: string; address: string; voter: boolean }[];
  openStream(addr: string, method: string, args: unknown, opts: { timeoutMs: number }): Promise<RpcStream>;
}

export interface FanoutOptions {
  /** The floor of the staging deadline (the file's size adds to it). */
  minTimeoutMs?: number;
  /**
   * The whole file's size and digest, known before the first byte goes out: the staging of a release that
   * wants them up front (features.ts, one-pass-restore). It sends no end-of-upload chunk and answers no
   * reply frame: it checks size and digest itself and ends its side once the file is durable.
   */
  expect?: StageReply;
}

interface PeerStaging {
  peer: { id: string; address: string; voter: boolean };
  /** Settles with the peer's answer, or rejects; never unhandled. */
  done: Promise<StageReply>;
  stop(reason: Error): void;
}

export class StageFanout {
  private readonly peers: PeerStaging[];
  private readonly voters: number;
  private committed: ((size: number) => void) | undefined;
  private refused: ((e: Error) => void) | undefined;
  private readonly commit$: Promise<number>;
  private stopped: Error | undefined;

  constructor(
    private readonly h: FanoutHost,
    readonly id: string,
    private readonly file: GrowingFile,
    private readonly opts: FanoutOptions = {},
  ) {
    this.commit$ = new Promise<number>((resolve, reject) => {
      this.committed = resolve;
      this.refused = reject;
    });
    this.commit$.catch(() => undefined);
    const servers = h.servers();
    this.voters = servers.filter((s) => s.voter).length;
    this.peers = servers.filter((s) => s.id !== h.selfId()).map((peer) => this.start(peer));
  }

  /**
   * The leader verified the file (`size` bytes) and made it durable: end every stream; peers answer. From
   * now each peer has the staging deadline for all that is left, the bytes it has not taken yet included:
   * a peer that stopped reading (frozen, or its disk stalled) must not hold its stream, nor the leader's
   * wait for a quorum, for ever.
   */
  commit(size: number): void {
    const timeoutMs = (this.opts.minTimeoutMs ?? STAGE_MIN_TIMEOUT_MS) + size / STAGE_BYTES_PER_MS;
    for (const p of this.peers) {
      const timer = deadlineTimer(
        timeoutMs,
        () => p.stop(new EdgeError("TIMEOUT", `staging on ${p.peer.address} timed out after ${formatDuration(Math.round(timeoutMs))}`)),
        { keepAlive: false },
      );
      void p.done.finally(() => timer.cancel()).catch(() => undefined);
    }
    this.committed?.(size);
  }

  /** Give the staging up everywhere: every stream is aborted, each peer drops what it received. */
  abort(reason: Error): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.file.fail(reason);
    this.refused?.(reason);
    for (const p of this.peers) p.stop(reason);
  }

  /**
   * Wait until a quorum of voters (this leader included) holds the file with `want`'s size and digest, or
   * until that can no longer happen. Peers still staging go on; their failures are logged.
   */
  async quorum(want: StageReply): Promise<{ ok: number; voters: number; quorum: number }> {
    const quorum = Math.floor(this.voters / 2) + 1;
    let ok = 1;
    let pending = this.peers.length;
    await new Promise<void>((resolve) => {
      if (ok >= quorum || pending === 0) return resolve();
      for (const p of this.peers) {
        p.done
          .then((r) => {
            if (r.Size !== want.Size || r.Sha256 !== want.Sha256)
              throw new EdgeError(
                "BAD_SNAPSHOT",
                `the staged copy holds ${r.Size} bytes sha256 ${r.Sha256}, the leader's ${want.Size} bytes sha256 ${want.Sha256}`,
              );
            if (p.peer.voter) ok++;
          })
          .catch((e: unknown) => {
            // A staging this leader gave up on itself (abort) is not a peer's failure.
            if (e !== this.stopped)
              this.h.log.warn("restore: staging on a peer failed", { peer: p.peer.address, error: (e as Error).message });
          })
          .finally(() => {
            pending--;
            if (ok >= quorum || pending === 0) resolve();
          });
      }
    });
    return { ok, voters: this.voters, quorum };
  }

  private start(peer: PeerStaging["peer"]): PeerStaging {
    const h = this.h;
    let st: RpcStream | undefined;
    let stopped: Error | undefined;
    const stop = (reason: Error) => {
      stopped ??= reason;
      st?.abort("ABORTED", reason.message);
    };
    const check = () => {
      if (stopped) throw stopped;
    };
    const run = async (): Promise<StageReply> => {
      const file = await this.file.reader();
      try {
        const expect = this.opts.expect;
        const args = expect ? { id: this.id, sha256: expect.Sha256, size: expect.Size } : { id: this.id };
        st = await h.openStream(peer.address, "Snapshot.Stage", args, { timeoutMs: STAGE_OPEN_TIMEOUT_MS });
        check();
        await sendAll(st, { chunks: file.chunks, owned: owned("file") }, check);
        // The upload ended: no more bytes. The End frame waits for the leader's verdict on them.
        if (!expect) await st.send(new Uint8Array(0));
        await this.commit$;
        check();
        await st.end();
        let reply: unknown;
        for await (const c of st) {
          check();
          if (c.byteLength > MAX_REPLY_BYTES) throw new EdgeError("BAD_REQUEST", "staging reply frame too large");
          reply = decode(c);
        }
        check();
        if (reply === undefined && expect) return expect;
        return checkReply(reply);
      } catch (e) {
        // Also on the deadline: the peer drops what it received.
        stop(e as Error);
        throw this.stopped ?? stopped ?? e;
      } finally {
        await file.close().catch(() => undefined);
      }
    };
    const done = run();
    done.catch(() => undefined);
    return { peer, done, stop };
  }
}

function checkReply(r: unknown): StageReply {
  const o = r as Partial<StageReply> | undefined;
  if (typeof o?.Size !== "number" || typeof o.Sha256 !== "string")
    throw new EdgeError("RPC", "the staging peer ended without a size and digest");
  return { Size: o.Size, Sha256: o.Sha256 };
}
