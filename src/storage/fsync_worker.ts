// The one long-lived thread that runs fdatasyncSync for RealDisk: requests go in by fd, results come
// back by request id. fdatasyncSync on a dedicated thread outruns async fs.fdatasync
// (test/bench/storage.bench.ts) without stalling the event loop.
//
// The worker is started from source text through a Blob URL, not from `new URL("./x.ts",
// import.meta.url)`: `bun build --compile` only embeds a worker file given as an extra entry point
// (the compiled binary otherwise fails with ModuleNotFound "/$bunfs/root/..."), and the
// build script names src/main.ts alone. A Blob worker needs no bundling. If the worker cannot start
// or dies, every sync (pending ones included) falls back to async fs.fdatasync, which is also correct:
// fdatasync is idempotent and covers everything written before the call.
import * as fs from "node:fs";

/** Worker body: one message {id, fd} in, one {id} or {id, code, message} out. Kept tiny on purpose. */
const WORKER_SOURCE = `
import { fdatasyncSync } from "node:fs";
self.onmessage = (ev) => {
  const { id, fd } = ev.data;
  try {
    fdatasyncSync(fd);
    postMessage({ id });
  } catch (e) {
    postMessage({ id, code: e && e.code ? String(e.code) : undefined, message: e && e.message ? String(e.message) : String(e) });
  }
};
postMessage({ id: 0 });
`;

/** An fs-like error carrying the errno code, so diskError() reports it exactly as an fs call's error. */
class FsyncFailure extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "FsyncFailure";
  }
}

interface Reply {
  id: number;
  code?: string;
  message?: string;
}

interface Pending {
  fd: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

function asyncFdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

/** Cap on in-flight requests; the WAL and stable store issue one or two at a time. */
const MAX_PENDING = 1 << 16;

export class FsyncWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private broken = false;

  /** workerSource is for tests (a worker that fails to start); production uses the built-in body. */
  constructor(
    private readonly onFallback: (reason: string) => void = () => {},
    private readonly workerSource: string = WORKER_SOURCE,
  ) {}

  /** True once the worker failed and syncs run through async fs.fdatasync. */
  get fallenBack(): boolean {
    return this.broken;
  }

  /** fdatasync(fd) on the worker thread; rejects with an fs-like error ({code, message}) on failure. */
  sync(fd: number): Promise<void> {
    if (this.broken) return asyncFdatasync(fd);
    const w = this.worker ?? this.start();
    if (!w) return asyncFdatasync(fd);
    if (this.pending.size >= MAX_PENDING) return asyncFdatasync(fd);
    const id = this.nextId++;
    if (this.nextId > 2 ** 52) this.nextId = 1;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { fd, resolve, reject });
      if (this.pending.size === 1) w.ref(); // keep the process alive while a sync is outstanding
      w.postMessage({ id, fd });
    });
  }

  private start(): Worker | undefined {
    try {
      const url = URL.createObjectURL(new Blob([this.workerSource], { type: "application/javascript" }));
      const w = new Worker(url);
      w.onmessage = (ev: MessageEvent<Reply>) => this.settle(ev.data);
      w.onerror = (ev: ErrorEvent) => this.fallBack(`fdatasync worker failed: ${ev.message}`);
      w.addEventListener("close", () => {
        if (!this.broken && this.pending.size > 0) this.fallBack("fdatasync worker exited");
      });
      w.unref(); // an idle worker must not keep the process alive
      this.worker = w;
      return w;
    } catch (e) {
      this.fallBack(`fdatasync worker could not start: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }

  private settle(r: Reply): void {
    if (r.id === 0) return; // the worker's "started" message
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (r.message === undefined) p.resolve();
    else p.reject(new FsyncFailure(r.message, r.code));
  }

  private fallBack(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    this.onFallback(`${reason}; using async fs.fdatasync from now on`);
    const w = this.worker;
    this.worker = undefined;
    try {
      w?.terminate();
    } catch {
      // Already gone.
    }
    // Re-run outstanding requests: whether the worker synced them is unknown, and fdatasync is idempotent.
    const outstanding = [...this.pending.values()];
    this.pending.clear();
    for (const p of outstanding) asyncFdatasync(p.fd).then(p.resolve, p.reject);
  }

  /** Stop the thread (tests); later syncs start a new one. */
  terminate(): void {
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      w.onerror = null;
      w.terminate();
    }
    const outstanding = [...this.pending.values()];
    this.pending.clear();
    for (const p of outstanding) asyncFdatasync(p.fd).then(p.resolve, p.reject);
  }
}
