// Disk on node:fs. Every failure becomes a DiskError. fdatasync runs as fdatasyncSync on one
// dedicated Worker (fsync_worker.ts): it keeps the event loop ticking as async fs.fdatasync does, at
// about the rate of a plain fdatasyncSync loop (test/bench/storage.bench.ts).
import * as fs from "node:fs";
import type { Disk, DiskFile } from "./disk.ts";
import { diskError } from "./disk_error.ts";
import { FsyncWorker } from "./fsync_worker.ts";

/** Shared by every RealFile in the process: one thread, requests by fd. */
export const fsyncWorker = new FsyncWorker((msg) => console.error(`[warn] storage: ${msg}`));

function workerFdatasync(fd: number): Promise<void> {
  return fsyncWorker.sync(fd);
}

function asyncFdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

export interface RealDiskOptions {
  /**
   * "async" (default): Bun's async fs.fdatasync, off the event loop on the runtime's thread pool;
   * "worker": fdatasyncSync on a dedicated worker thread. Side by side in test/bench/storage.bench.ts
   * they are within noise of each other, so the default is the one with no extra thread.
   */
  fdatasync?: "worker" | "async";
}

class RealFile implements DiskFile {
  private closed = false;
  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly fdatasync: (fd: number) => Promise<void>,
  ) {}

  size(): number {
    try {
      return fs.fstatSync(this.fd).size;
    } catch (e) {
      throw diskError("stat", this.path, e);
    }
  }

  read(into: Uint8Array, position: number): number {
    let done = 0;
    try {
      while (done < into.length) {
        const n = fs.readSync(this.fd, into, done, into.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (e) {
      throw diskError("read", this.path, e);
    }
    return done;
  }

  write(data: Uint8Array, position: number): void {
    let done = 0;
    try {
      while (done < data.length) {
        done += fs.writeSync(this.fd, data, done, data.length - done, position + done);
      }
    } catch (e) {
      throw diskError("write", this.path, e);
    }
  }

  truncate(length: number): void {
    try {
      fs.ftruncateSync(this.fd, length);
    } catch (e) {
      throw diskError("truncate", this.path, e);
    }
  }

  async sync(): Promise<void> {
    try {
      await this.fdatasync(this.fd);
    } catch (e) {
      throw diskError("fdatasync", this.path, e);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Closing after a failed write reports the same error again; the write already failed loudly.
    }
  }
}

export class RealDisk implements Disk {
  private readonly fdatasync: (fd: number) => Promise<void>;
  constructor(opts: RealDiskOptions = {}) {
    this.fdatasync = opts.fdatasync === "worker" ? workerFdatasync : asyncFdatasync;
  }

  mkdirp(dir: string): void {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw diskError("mkdir", dir, e);
    }
  }

  list(dir: string): string[] {
    try {
      return fs.readdirSync(dir);
    } catch (e) {
      throw diskError("readdir", dir, e);
    }
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  open(path: string, create: boolean): DiskFile {
    try {
      const flags = fs.constants.O_RDWR | (create ? fs.constants.O_CREAT : 0);
      return new RealFile(path, fs.openSync(path, flags, 0o644), this.fdatasync);
    } catch (e) {
      throw diskError("open", path, e);
    }
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (e) {
      throw diskError("rename", `${from} -> ${to}`, e);
    }
  }

  unlink(path: string): void {
    try {
      fs.unlinkSync(path);
    } catch (e) {
      throw diskError("unlink", path, e);
    }
  }

  async syncDir(dir: string): Promise<void> {
    let fd: number | undefined;
    try {
      fd = fs.openSync(dir, fs.constants.O_RDONLY);
      await new Promise<void>((resolve, reject) => fs.fsync(fd as number, (e) => (e ? reject(e) : resolve())));
    } catch (e) {
      throw diskError("fsync dir", dir, e);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}

export const realDisk: Disk = new RealDisk();
