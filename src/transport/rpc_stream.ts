// A streaming RPC's two-way channel of opaque chunks over one mux stream.
// Frames are {Chunk}, {Error: {Code, Message}} or {End: true}; only End is a
// clean finish: a FIN or reset without it surfaces as RpcError("ABORTED").
import type { MuxStream } from "./mux_stream.ts";
import { chunkFrameHead, encodeFrame, type FrameReader } from "./rpc_frame.ts";
import { errorFromWire, RpcError } from "./rpc_error.ts";
import type { ErrorCode } from "../lib/errors.ts";
import { settlesWithin } from "../lib/deadline.ts";

export interface RpcStream extends AsyncIterable<Uint8Array> {
  /** Resolves once the mux window and the socket accepted the chunk (backpressure). */
  send(chunk: Uint8Array): Promise<void>;
  /** Explicit end frame, then FIN. */
  end(): Promise<void>;
  /** Error frame, then reset: the peer's iteration throws RpcError(code, message). */
  abort(code: ErrorCode, message: string): void;
}

/** From this size a chunk is sent after its frame head rather than encoded into a frame (copied). */
const LARGE_CHUNK = 16 * 1024;

/** How long an abort waits for its error frame to leave before resetting anyway. */
const ABORT_FLUSH_MS = 1_000;

export class MuxRpcStream implements RpcStream {
  private readonly stream: MuxStream;
  private readonly reader: FrameReader;
  private ended = false;
  private aborted = false;
  private finished = false;
  private iterating = false;
  private readonly onFinish: (() => void) | undefined;

  constructor(stream: MuxStream, reader: FrameReader, onFinish?: () => void) {
    this.stream = stream;
    this.reader = reader;
    this.onFinish = onFinish;
  }

  get isEnded(): boolean {
    return this.ended || this.aborted;
  }

  async send(chunk: Uint8Array): Promise<void> {
    if (this.aborted) throw new RpcError("ABORTED", "send on an aborted stream");
    if (this.ended) throw new RpcError("ABORTED", "send after end");
    if (chunk.length < LARGE_CHUNK) return this.writeFrame({ Chunk: chunk });
    // The frame's head, then the chunk itself: the same bytes as encodeFrame({Chunk}) without copying the
    // chunk twice (into cbor-x's buffer, then into the frame). Both writes are queued on the stream at
    // once, so nothing (an abort's error frame) can come between them.
    const head = this.stream.write(chunkFrameHead(chunk.length));
    const body = this.stream.write(chunk);
    try {
      await Promise.all([head, body]);
    } catch (e) {
      throw new RpcError("ABORTED", e instanceof Error ? e.message : String(e));
    }
  }

  async end(): Promise<void> {
    if (this.ended || this.aborted) return;
    this.ended = true;
    await this.writeFrame({ End: true });
    await this.stream.closeWrite().catch(() => {});
    this.maybeFinish();
  }

  abort(code: ErrorCode, message: string): void {
    if (this.aborted) return;
    const wasEnded = this.ended;
    this.aborted = true;
    const reset = () => {
      this.stream.reset();
      this.finish();
    };
    if (wasEnded || this.stream.isReset) return reset();
    settlesWithin(this.stream.write(encodeFrame({ Error: { Code: code, Message: message } })), ABORT_FLUSH_MS).then(reset, reset);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.iterating) throw new RpcError("BAD_REQUEST", "an RpcStream can be iterated only once");
    this.iterating = true;
    for (;;) {
      let f: unknown;
      try {
        f = await this.reader.next();
      } catch (e) {
        this.finish();
        throw e instanceof RpcError ? e : new RpcError("ABORTED", e instanceof Error ? e.message : String(e));
      }
      if (f === null) {
        this.finish();
        throw new RpcError("ABORTED", "peer closed the stream without an end frame");
      }
      if (typeof f !== "object" || f === null) throw this.protocol("stream frame is not a map");
      const o = f as Record<string, unknown>;
      if (o.Chunk instanceof Uint8Array) {
        yield o.Chunk;
      } else if (o.End === true) {
        this.remoteEnded = true;
        this.maybeFinish();
        return;
      } else if ("Error" in o) {
        this.finish();
        throw errorFromWire(o.Error);
      } else {
        throw this.protocol("unknown stream frame");
      }
    }
  }

  private remoteEnded = false;

  private protocol(message: string): RpcError {
    this.abort("BAD_REQUEST", message);
    return new RpcError("BAD_REQUEST", message);
  }

  private async writeFrame(v: unknown): Promise<void> {
    try {
      await this.stream.write(encodeFrame(v));
    } catch (e) {
      throw new RpcError("ABORTED", e instanceof Error ? e.message : String(e));
    }
  }

  private maybeFinish(): void {
    if (this.ended && this.remoteEnded) this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onFinish?.();
  }
}
