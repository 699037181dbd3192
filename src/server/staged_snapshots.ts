// Snapshot files staged for a restore: received and verified (size and SHA-256) and made durable
// before the restore entry is proposed, kept until a raft snapshot on this
// server covers the restore (a restart replays the entry and needs the file).
// Beside a file whose restore this server has applied, `<id>.applied` holds the restore's index, so a
// server restarted after its raft snapshot covered the restore (the entry is then not replayed) still
// knows the file may go once every server has applied it, instead of keeping it for the day-old sweep.
import { createHash } from "node:crypto";
import { type FileHandle, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { writeChunkFile } from "../lib/chunk_file.ts";
import { fileChunks } from "../snapshot/reader.ts";

const ID_RE = /^[a-zA-Z0-9-]{1,128}$/;
export const ORPHAN_AGE_MS = 24 * 3600_000;
const APPLIED = ".applied";
/** A sidecar holds one decimal index; anything longer is not ours. */
const MAX_APPLIED_BYTES = 32;

export function checkStagedId(id: string): void {
  if (!ID_RE.test(id)) throw new EdgeError("BAD_REQUEST", `invalid staged snapshot id ${JSON.stringify(id)}`);
}

export class StagedSnapshots {
  /**
   * The SHA-256 (hex) this process computed of each staged file as it wrote it, by id: a build from the
   * file whose committed digest is this one need not hash it again (its frames' CRC32s find damage
   * since). Not kept across a restart: a file staged before it is hashed when read. One entry per file.
   */
  private readonly written = new Map<string, string>();

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Partial files from a crash, and files of restores that never committed.
    await this.sweep(new Set(), { temps: true });
  }

  /**
   * Remove staged files (with their notes) last written over a day before `now`, but those of `keep`:
   * a restore that never committed (its leader crashed between staging and proposing it) leaves its file
   * on the servers that staged it, and nothing else would ever remove it. `temps`: also every temp file,
   * which only a crash leaves (at start); while running they are uploads and stagings under way.
   */
  async sweep(keep: ReadonlySet<string>, opts: { temps: boolean; now?: number }): Promise<string[]> {
    const now = opts.now ?? Date.now();
    const removed: string[] = [];
    for (const name of await readdir(this.dir)) {
      const p = join(this.dir, name);
      if (name.endsWith(".tmp")) {
        if (opts.temps) await rm(p, { force: true });
        continue;
      }
      const id = name.endsWith(".snap")
        ? name.slice(0, -".snap".length)
        : name.endsWith(APPLIED)
          ? name.slice(0, -APPLIED.length)
          : undefined;
      if (id !== undefined && keep.has(id)) continue;
      const st = await stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > ORPHAN_AGE_MS) {
        this.log.info("removing old staged snapshot", { file: name });
        if (id !== undefined) this.written.delete(id);
        await rm(p, { force: true });
        removed.push(name);
      }
    }
    return removed;
  }

  path(id: string): string {
    checkStagedId(id);
    return join(this.dir, `${id}.snap`);
  }

  has(id: string): boolean {
    return existsSync(this.path(id));
  }

  /** A temp file in the staging directory for an upload being spooled. */
  tempPath(tag: string): string {
    return join(this.dir, `${tag}-${crypto.randomUUID()}.tmp`);
  }

  /**
   * Write `chunks` to a temp file, check size and SHA-256 (hex) if given, fsync, rename to the staged
   * name, fsync the directory. Returns size and hex digest. A bad or cut stream leaves nothing behind.
   * `release`: the chunks are ours alone (an RPC stream's), so each one's memory serves the next once written.
   */
  async receive(
    id: string,
    chunks: AsyncIterable<Uint8Array>,
    expect?: { sha256: string; size: number },
    opts?: { release?: boolean },
  ): Promise<{ size: number; sha256: string }> {
    const final = this.path(id);
    const tmp = this.tempPath(id);
    const r = await spool(tmp, chunks, expect?.size, opts);
    try {
      if (expect && (r.size !== expect.size || r.sha256 !== expect.sha256)) {
        throw new EdgeError(
          "BAD_SNAPSHOT",
          `staged snapshot ${id} does not match: got ${r.size} bytes sha256 ${r.sha256}, expected ${expect.size} bytes sha256 ${expect.sha256}`,
        );
      }
      await rename(tmp, final);
      this.written.set(id, r.sha256);
      await fsyncDir(this.dir);
    } catch (e) {
      await rm(tmp, { force: true });
      this.written.delete(id);
      throw e;
    }
    return r;
  }

  /** Move an already-spooled and verified file into place under `id`; `sha256`, as hashed while it was spooled. */
  async adopt(id: string, tmp: string, sha256: string): Promise<void> {
    assert(/^[0-9a-f]{64}$/.test(sha256), "a staged file's SHA-256 is 64 hex digits");
    await rename(tmp, this.path(id));
    this.written.set(id, sha256);
    await fsyncDir(this.dir);
  }

  /** The SHA-256 this process computed of staged file `id` as it wrote it, if it did. */
  hashedAsWritten(id: string): string | undefined {
    return this.written.get(id);
  }

  open(id: string): AsyncIterable<Uint8Array> {
    return fileChunks(this.path(id));
  }

  async remove(id: string): Promise<void> {
    this.written.delete(id);
    await rm(this.path(id), { force: true });
    await rm(this.appliedPath(id), { force: true });
  }

  private appliedPath(id: string): string {
    checkStagedId(id);
    return join(this.dir, `${id}${APPLIED}`);
  }

  /**
   * Note that the restore of staged file `id` was applied here at `index`. Written whole (temp file and
   * rename) but not synced: a sidecar lost to a crash only leaves the file to the day-old sweep, as before.
   */
  async markApplied(id: string, index: number): Promise<void> {
    assert(Number.isSafeInteger(index) && index > 0, "a restore applies at a positive index");
    const tmp = this.tempPath(`${id}-applied`);
    try {
      await writeFile(tmp, String(index), { mode: 0o600 });
      await rename(tmp, this.appliedPath(id));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * The restores applied here whose staged files remain, by id. A sidecar whose file is gone, or whose
   * content is not an index, is removed: it can no longer say anything about a file.
   */
  async appliedRestores(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith(APPLIED)) continue;
      const id = name.slice(0, -APPLIED.length);
      const p = join(this.dir, name);
      if (!ID_RE.test(id) || !this.has(id)) {
        await rm(p, { force: true });
        continue;
      }
      const text = (await readFile(p, "utf8")).slice(0, MAX_APPLIED_BYTES);
      const index = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(index)) {
        this.log.warn("ignoring an unreadable applied-restore note", { file: name });
        await rm(p, { force: true });
        continue;
      }
      out.set(id, index);
    }
    return out;
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir)).filter((n) => n.endsWith(".snap")).map((n) => n.slice(0, -5));
  }

  /** SHA-256 (hex) and size of a staged file. */
  async digest(id: string): Promise<{ size: number; sha256: string }> {
    const h = createHash("sha256");
    let size = 0;
    for await (const c of this.open(id)) {
      h.update(c);
      size += c.byteLength;
    }
    return { size, sha256: h.digest("hex") };
  }
}

/**
 * Stream chunks to a new 0600 file with fsync, in gathered writes; hex SHA-256 and size out. Bounded
 * memory. `release`: the chunks are ours alone (an RPC stream's), so each one's memory serves the next
 * once it is written. On failure the file is removed.
 */
export async function spool(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  maxSize?: number,
  opts?: { release?: boolean },
): Promise<{ size: number; sha256: string; digest: string }> {
  const h = createHash("sha256");
  let size = 0;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const c of chunks) {
      size += c.byteLength;
      if (maxSize !== undefined && size > maxSize)
        throw new EdgeError("BAD_SNAPSHOT", `stream is longer than the announced ${maxSize} bytes`);
      h.update(c);
      yield c;
    }
  }
  const written = await writeChunkFile(path, counted(), { durable: true, release: opts?.release === true });
  assert(written === size, "the file holds every byte hashed");
  const d = h.digest();
  return { size, sha256: d.toString("hex"), digest: d.toString("base64") };
}

/**
 * A new 0600 file that chunks are written to as they pass through to a reader: the reader sees each
 * chunk only once it is in the file, so when the reader has consumed the whole stream the file holds
 * exactly what it read. Lets a restore verify an upload while it arrives instead of after.
 */
export class SpoolThrough {
  private size = 0;
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly onWrite: ((size: number) => void) | undefined,
  ) {}

  /** Bytes written so far. */
  get bytes(): number {
    return this.size;
  }

  /** `onWrite`: told the file's size after each write, for readers tailing it (growing_file.ts). */
  static async create(path: string, onWrite?: (size: number) => void): Promise<SpoolThrough> {
    return new SpoolThrough(path, await open(path, "wx", 0o600), onWrite);
  }

  async *through(chunks: AsyncIterable<Uint8Array>, onEnd?: (size: number) => void): AsyncGenerator<Uint8Array> {
    for await (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) {
        const { bytesWritten } = await this.fh.write(c, off, c.byteLength - off);
        off += bytesWritten;
      }
      this.size += c.byteLength;
      this.onWrite?.(this.size);
      yield c;
    }
    onEnd?.(this.size);
  }

  /** Make the file durable and close it; its size. */
  async finish(): Promise<number> {
    await this.fh.datasync();
    await this.fh.close();
    return this.size;
  }

  /** Close and delete the file (after a failed or refused stream). */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
