// One process per data directory: an advisory flock(2) on "<data_dir>/agent.lock", taken by the agent at
// start and by the offline commands (recover, restore -offline) for their run. The kernel drops the lock
// when its holder's last descriptor closes, which a crash or a SIGKILL does too: a lock file left behind
// means nothing by itself. The holder writes its PID into the file after taking the lock, so a refused
// process can name it. Node and Bun offer no flock; libc's is called through bun:ffi.
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { EdgeError } from "../lib/errors.ts";

export const LOCK_FILE = "agent.lock";
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
/** The lock file holds a PID and a word on what holds it: anything longer is not ours to read. */
const MAX_HOLDER_BYTES = 256;

type Flock = (fd: number, op: number) => number;
let flockFn: Flock | undefined;

function flock(): Flock {
  if (flockFn) return flockFn;
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so", "libc.dylib"]) {
    try {
      const lib = dlopen(name, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
      const fn = lib.symbols.flock;
      flockFn = (fd, op) => fn(fd, op);
      return flockFn;
    } catch (e) {
      lastError = e;
    }
  }
  throw new EdgeError("INTERNAL", `cannot load flock(2) from libc: ${(lastError as Error).message}`);
}

export interface DirLock {
  readonly path: string;
  /** Drops the lock (closing the descriptor drops it too). */
  release(): void;
}

/** Who holds `dir`'s lock, as its file says ("" when unknown). */
export function lockHolder(dir: string): string {
  try {
    return readFileSync(join(dir, LOCK_FILE), "utf8").slice(0, MAX_HOLDER_BYTES).trim();
  } catch {
    return "";
  }
}

/**
 * Takes `dir`'s lock for this process (creating `dir`, owner-only, if missing, unless `create` is false), or throws CONFLICT naming
 * the holder's PID. `what` says what holds it ("agent", "raft recover"), written after the PID.
 */
export function lockDataDir(dir: string, what: string, opts: { create?: boolean } = {}): DirLock {
  if (opts.create === false) {
    if (!existsSync(dir)) throw new EdgeError("NOT_FOUND", `data directory ${dir} does not exist`);
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const path = join(dir, LOCK_FILE);
  // Not truncated on open: a refused process must not wipe the holder's PID.
  const fd = openSync(path, "a+", 0o600);
  if (flock()(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    const holder = lockHolder(dir);
    const pid = /^\d+/.exec(holder)?.[0];
    throw new EdgeError(
      "CONFLICT",
      `data directory ${dir} is in use by another process${pid ? ` (PID ${pid}${holder.slice(pid.length).trim() ? `, ${holder.slice(pid.length).trim()}` : ""})` : ""}: stop it first (lock: ${path})`,
    );
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid} ${what}\n`);
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      flock()(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}
