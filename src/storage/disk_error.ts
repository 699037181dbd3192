// Errors of the storage layer. A DiskError (code DISK) is fatal: the server stops rather than
// retrying a failed write or fsync. A CorruptError (code CORRUPT) refuses to open damaged data.
import { EdgeError, errnoOf } from "../lib/errors.ts";

export class DiskError extends EdgeError {
  /** The errno code from the OS (ENOSPC, EIO, ...) when there was one. */
  readonly errno: string | undefined;
  constructor(message: string, errno?: string) {
    super("DISK", message);
    this.name = "DiskError";
    this.errno = errno;
  }
}

export class CorruptError extends EdgeError {
  constructor(message: string) {
    super("CORRUPT", message);
    this.name = "CorruptError";
  }
}

/** Turn an fs error into a DiskError naming the operation and file; ENOSPC gets a plain message. */
export function diskError(op: string, path: string, e: unknown): DiskError {
  if (e instanceof DiskError) return e;
  const errno = errnoOf(e);
  const detail = e instanceof Error ? e.message : String(e);
  if (errno === "ENOSPC") {
    return new DiskError(`out of disk space: ${op} ${path} failed; free space and restart (nothing acknowledged was lost)`, errno);
  }
  return new DiskError(`disk ${op} failed on ${path}: ${detail}`, errno);
}
