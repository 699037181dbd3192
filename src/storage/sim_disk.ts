// An in-memory Disk for the raft simulation and for crash tests: every file keeps the bytes last
// synced beside its current bytes, every directory its last synced names. crash() throws away
// whatever was not synced and, given a random source, may keep a torn part of it, as a real disk might.
// SimWal / SimStableStore are the real Wal and StableStore running on it.
import { dirname } from "node:path";
import type { Disk, DiskFile } from "./disk.ts";
import { DiskError } from "./disk_error.ts";
import { StableStore } from "./stable_store.ts";
import { Wal, type WalOptions } from "./wal.ts";

class Inode {
  data: Uint8Array = new Uint8Array(0);
  len = 0;
  durable: Uint8Array = new Uint8Array(0);

  bytes(): Uint8Array {
    return this.data.subarray(0, this.len);
  }
  ensure(n: number): void {
    if (n <= this.data.length) return;
    const d = new Uint8Array(Math.max(n, this.data.length * 2, 64));
    d.set(this.data.subarray(0, this.len));
    this.data = d;
  }
}

type NameOp = { dir: string; apply: (names: Map<string, Inode>) => void };

export interface SimDiskOptions {
  /** When true, sync() waits for completeSyncs(); otherwise it is durable at once. */
  manualSync?: boolean;
}

export class SimDisk implements Disk {
  private names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private pendingNameOps: NameOp[] = [];
  private waiting: { inode: Inode; snapshot: Uint8Array; resolve: () => void }[] = [];
  private generation = 0;
  private faults: { op: "write" | "sync"; errno: string }[] = [];
  syncCount = 0;

  constructor(private readonly opts: SimDiskOptions = {}) {}

  /** Make the next write or sync fail with the given errno (e.g. "ENOSPC", "EIO"). */
  injectFault(op: "write" | "sync", errno: string): void {
    this.faults.push({ op, errno });
  }

  private fault(op: "write" | "sync", path: string): void {
    const i = this.faults.findIndex((f) => f.op === op);
    if (i < 0) return;
    const [f] = this.faults.splice(i, 1);
    const errno = f?.errno ?? "EIO";
    throw new DiskError(errno === "ENOSPC" ? `out of disk space: ${op} ${path} failed` : `disk ${op} failed on ${path}: ${errno}`, errno);
  }

  /** Complete every pending sync (manualSync mode). */
  completeSyncs(): void {
    for (const w of this.waiting.splice(0)) {
      w.inode.durable = w.snapshot;
      w.resolve();
    }
  }

  /**
   * Lose everything not synced. With `random`, each file may keep a torn part of its unsynced
   * bytes (new bytes or zeros) and a prefix of the unsynced directory operations may survive.
   * Pending syncs never resolve; old file handles stop working.
   */
  crash(random?: () => number): void {
    this.generation++;
    this.waiting = [];
    const names = new Map(this.durableNames);
    if (random) {
      const keep = Math.floor(random() * (this.pendingNameOps.length + 1));
      for (const op of this.pendingNameOps.slice(0, keep)) op.apply(names);
    }
    this.pendingNameOps = [];
    const seen = new Set<Inode>();
    for (const inode of [...this.names.values(), ...names.values()]) {
      if (seen.has(inode)) continue;
      seen.add(inode);
      const cur = inode.bytes().slice();
      const dur = inode.durable;
      let next: Uint8Array = dur.slice();
      if (random) {
        let p = 0;
        while (p < cur.length && p < dur.length && cur[p] === dur[p]) p++;
        // The tear stays within the unsynced change [p, q): bytes past the last changed one were
        // never written, so a crash cannot zero them (it did, and so destroyed a slot file's intact copy).
        let q = Math.max(cur.length, dur.length);
        if (cur.length === dur.length) while (q > p && cur[q - 1] === dur[q - 1]) q--;
        if (p < q) {
          const cut = p + Math.floor(random() * (q - p + 1));
          const zeros = random() < 0.3;
          next = new Uint8Array(Math.max(dur.length, Math.min(cut, cur.length)));
          next.set(dur.subarray(0, next.length));
          for (let i = p; i < Math.min(cut, cur.length); i++) next[i] = zeros ? 0 : (cur[i] as number);
        }
      }
      inode.data = next.slice();
      inode.len = next.length;
      inode.durable = next;
    }
    this.names = names;
    this.durableNames = new Map(names);
  }

  mkdirp(_dir: string): void {
    // Directories are implicit in paths.
  }

  list(dir: string): string[] {
    const out: string[] = [];
    for (const p of this.names.keys()) if (dirname(p) === dir) out.push(p.slice(dir.length + 1));
    return out;
  }

  exists(path: string): boolean {
    return this.names.has(path);
  }

  open(path: string, create: boolean): DiskFile {
    let inode = this.names.get(path);
    if (!inode) {
      if (!create) throw new DiskError(`disk open failed on ${path}: ENOENT`, "ENOENT");
      const fresh = new Inode();
      inode = fresh;
      this.names.set(path, fresh);
      this.pendingNameOps.push({ dir: dirname(path), apply: (n) => n.set(path, fresh) });
    }
    return new SimFile(this, path, inode, this.generation);
  }

  rename(from: string, to: string): void {
    const inode = this.names.get(from);
    if (!inode) throw new DiskError(`disk rename failed on ${from}: ENOENT`, "ENOENT");
    this.names.delete(from);
    this.names.set(to, inode);
    this.pendingNameOps.push({
      dir: dirname(to),
      apply: (n) => {
        n.delete(from);
        n.set(to, inode);
      },
    });
  }

  unlink(path: string): void {
    if (!this.names.delete(path)) throw new DiskError(`disk unlink failed on ${path}: ENOENT`, "ENOENT");
    this.pendingNameOps.push({ dir: dirname(path), apply: (n) => n.delete(path) });
  }

  async syncDir(dir: string): Promise<void> {
    // Apply, in order, the pending operations of this directory to the durable namespace.
    const rest: NameOp[] = [];
    for (const op of this.pendingNameOps) {
      if (op.dir === dir) op.apply(this.durableNames);
      else rest.push(op);
    }
    this.pendingNameOps = rest;
  }

  /**
   * A Disk bound to the current boot: after crash() every call through it fails, as a dead
   * process can do nothing more. The Wal and StableStore of one simulated process use one view.
   */
  view(): Disk {
    const gen = this.generation;
    const check = (what: string) => this.checkGeneration(gen, what);
    return {
      mkdirp: (d) => {
        check(d);
        return this.mkdirp(d);
      },
      list: (d) => {
        check(d);
        return this.list(d);
      },
      exists: (p) => {
        check(p);
        return this.exists(p);
      },
      open: (p, c) => {
        check(p);
        return this.open(p, c);
      },
      rename: (a, b) => {
        check(a);
        return this.rename(a, b);
      },
      unlink: (p) => {
        check(p);
        return this.unlink(p);
      },
      syncDir: async (d) => {
        check(d);
        return this.syncDir(d);
      },
    };
  }

  /** @internal */
  checkGeneration(gen: number, path: string): void {
    if (gen !== this.generation) throw new DiskError(`disk handle for ${path} is from before a crash`, "EBADF");
  }
  /** @internal */
  doWrite(inode: Inode, data: Uint8Array, pos: number, path: string): void {
    this.fault("write", path);
    inode.ensure(pos + data.length);
    if (pos > inode.len) inode.data.fill(0, inode.len, pos);
    inode.data.set(data, pos);
    inode.len = Math.max(inode.len, pos + data.length);
  }
  /** @internal */
  doSync(inode: Inode, path: string): Promise<void> {
    this.fault("sync", path);
    this.syncCount++;
    const snapshot = inode.bytes().slice();
    if (!this.opts.manualSync) {
      inode.durable = snapshot;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ inode, snapshot, resolve }));
  }
}

class SimFile implements DiskFile {
  constructor(
    private readonly disk: SimDisk,
    readonly path: string,
    private readonly inode: Inode,
    private readonly gen: number,
  ) {}
  size(): number {
    this.disk.checkGeneration(this.gen, this.path);
    return this.inode.len;
  }
  read(into: Uint8Array, position: number): number {
    this.disk.checkGeneration(this.gen, this.path);
    const src = this.inode.bytes().subarray(position, position + into.length);
    into.set(src);
    return src.length;
  }
  write(data: Uint8Array, position: number): void {
    this.disk.checkGeneration(this.gen, this.path);
    this.disk.doWrite(this.inode, data, position, this.path);
  }
  truncate(length: number): void {
    this.disk.checkGeneration(this.gen, this.path);
    this.inode.ensure(length);
    if (length > this.inode.len) this.inode.data.fill(0, this.inode.len, length);
    this.inode.len = length;
  }
  sync(): Promise<void> {
    this.disk.checkGeneration(this.gen, this.path);
    return this.disk.doSync(this.inode, this.path);
  }
  close(): void {}
}

/** The real write-ahead log on a simulated disk. */
export const SimWal = {
  open(disk: SimDisk, dir: string, opts: Omit<WalOptions, "disk"> = {}): Promise<Wal> {
    return Wal.open(dir, { ...opts, disk: disk.view(), log: opts.log ?? (() => {}) });
  },
};

/** The real stable store on a simulated disk. */
export const SimStableStore = {
  open(disk: SimDisk, dir: string): Promise<StableStore> {
    return StableStore.open(dir, { disk: disk.view() });
  },
};
