// Raft snapshots on disk: each written into "<id>.tmp/" and renamed to "<id>/" once its data and
// metadata (index, term, configuration, size, SHA-256) are synced; the newest `retain` are kept.
// Readers stream the file and verify size and SHA-256 at the end; damaged snapshots are skipped.
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { assert, assertIndex } from "../lib/assert.ts";
import type { Configuration, SnapshotMeta } from "../raft/storage.ts";
import { CorruptError, diskError } from "./disk_error.ts";

const DATA_FILE = "state.bin";
const META_FILE = "meta.json";
const TMP_SUFFIX = ".tmp";
const READ_CHUNK = 64 * 1024;
const MAX_WRITE_CHUNK = 16 * 1024 * 1024;
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

export interface StoredSnapshot {
  id: string;
  index: number;
  term: number;
  config: Configuration;
  size: number;
  /** Lowercase hex SHA-256 of the data file. */
  sha256: string;
  createdAt: number;
}

export interface SnapshotSink {
  readonly id: string;
  /** Resolves when the chunk is handed to the OS: await it for backpressure. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * fsync data and metadata, rename into place, fsync the directory; then apply retention. `check`, if
   * given, reads the complete data file (its path) before anything is renamed: if it throws, the partial
   * snapshot is discarded and close rejects with its error, so a file that fails it is never stored.
   */
  close(check?: (dataPath: string) => Promise<void>, given?: GivenDigest): Promise<StoredSnapshot>;
  /** Discard the partial snapshot. */
  cancel(): Promise<void>;
}

/**
 * The data's size and SHA-256 (hex) as its writer computed them over the very bytes it handed to write
 * (a snapshot file rewritten from a verified one hashes its output anyway, for its trailer): a sink
 * created with `digestGiven` records this instead of hashing the bytes a second time. A wrong one is
 * never silent: the snapshot then fails every read's check (openReader) and is not used.
 */
export interface GivenDigest {
  size: number;
  sha256: string;
}

type Log = (level: string, msg: string) => void;

async function fsyncPath(path: string, what: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(path, "r");
    await fh.sync();
  } catch (e) {
    throw diskError(`fsync ${what}`, path, e);
  } finally {
    await fh?.close();
  }
}

function parseMeta(text: string): StoredSnapshot | undefined {
  try {
    const o = JSON.parse(text) as Partial<StoredSnapshot>;
    const ok =
      typeof o.id === "string" &&
      ID_RE.test(o.id) &&
      Number.isSafeInteger(o.index) &&
      Number.isSafeInteger(o.term) &&
      Number.isSafeInteger(o.size) &&
      Number.isSafeInteger(o.createdAt) &&
      typeof o.sha256 === "string" &&
      /^[0-9a-f]{64}$/.test(o.sha256) &&
      Array.isArray(o.config?.servers);
    return ok ? (o as StoredSnapshot) : undefined;
  } catch {
    return undefined;
  }
}

const newestFirst = (a: StoredSnapshot, b: StoredSnapshot) => b.index - a.index || b.term - a.term || b.createdAt - a.createdAt;

export class SnapshotStore {
  private snaps: StoredSnapshot[] = [];

  private constructor(
    readonly dir: string,
    private readonly retain: number,
    private readonly log: Log,
  ) {}

  static async open(dir: string, opts: { retain?: number; log?: Log } = {}): Promise<SnapshotStore> {
    const retain = opts.retain ?? 2;
    assert(Number.isSafeInteger(retain) && retain >= 1 && retain <= 1000, "retain must be 1..1000");
    const store = new SnapshotStore(dir, retain, opts.log ?? ((l, m) => console.error(`[${l}] snapshots: ${m}`)));
    try {
      fs.mkdirSync(dir, { recursive: true });
      for (const name of fs.readdirSync(dir)) {
        const path = join(dir, name);
        if (name.endsWith(TMP_SUFFIX)) {
          // A write that never finished: it was never visible, so it goes.
          fs.rmSync(path, { recursive: true, force: true });
          continue;
        }
        if (!ID_RE.test(name)) continue;
        const meta = fs.existsSync(join(path, META_FILE)) ? parseMeta(fs.readFileSync(join(path, META_FILE), "utf8")) : undefined;
        if (!meta || meta.id !== name) {
          store.log("warn", `${path}: snapshot metadata missing or damaged; ignoring it`);
          continue;
        }
        store.snaps.push(meta);
      }
    } catch (e) {
      throw diskError("open snapshot store", dir, e);
    }
    store.snaps.sort(newestFirst);
    return store;
  }

  list(): StoredSnapshot[] {
    return this.snaps.map((s) => ({ ...s }));
  }

  /** The newest snapshot whose files are present with the recorded size (full checksum: verify()). */
  latest(): StoredSnapshot | undefined {
    for (const s of this.snaps) {
      let size = -1;
      try {
        size = fs.statSync(this.path(s.id)).size;
      } catch {}
      if (size === s.size) return { ...s };
      this.log("warn", `snapshot ${s.id}: data file is ${size < 0 ? "missing" : `${size} bytes, expected ${s.size}`}; trying an older one`);
    }
    return undefined;
  }

  /** The newest snapshot that passes a full size + SHA-256 check. */
  async latestVerified(): Promise<StoredSnapshot | undefined> {
    for (const s of this.snaps) {
      try {
        await this.verify(s.id);
        return { ...s };
      } catch (e) {
        this.log("warn", `snapshot ${s.id}: ${(e as Error).message}; trying an older one`);
      }
    }
    return undefined;
  }

  async verify(id: string): Promise<void> {
    for await (const _ of this.openReader(id)) {
      // Reading to the end is the check.
    }
  }

  path(id: string): string {
    assert(ID_RE.test(id), () => `bad snapshot id ${JSON.stringify(id)}`);
    return join(this.dir, id, DATA_FILE);
  }

  /** Streams the data; throws CorruptError at the end if size or SHA-256 differ from the metadata. */
  async *openReader(id: string): AsyncGenerator<Uint8Array> {
    const meta = this.snaps.find((s) => s.id === id);
    if (!meta) throw new CorruptError(`snapshot ${id} is not in the store`);
    const path = this.path(id);
    const hasher = new Bun.CryptoHasher("sha256");
    let size = 0;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, "r");
    } catch (e) {
      throw diskError("open", path, e);
    }
    try {
      for (;;) {
        const buf = new Uint8Array(READ_CHUNK);
        const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, size);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        size += bytesRead;
        if (size > meta.size) throw new CorruptError(`snapshot ${id}: ${path} is longer than the recorded ${meta.size} bytes`);
        hasher.update(chunk);
        yield chunk;
      }
    } finally {
      await fh.close();
    }
    if (size !== meta.size) throw new CorruptError(`snapshot ${id}: ${path} has ${size} bytes, expected ${meta.size}`);
    const sum = hasher.digest("hex");
    if (sum !== meta.sha256) throw new CorruptError(`snapshot ${id}: ${path} SHA-256 ${sum} does not match the recorded ${meta.sha256}`);
  }

  /** `digestGiven`: close is given the data's digest (GivenDigest), so the sink does not hash what it writes. */
  create(meta: SnapshotMeta & { id?: string }, opts: { digestGiven?: boolean } = {}): SnapshotSink {
    assertIndex(meta.index, "snapshot index");
    assertIndex(meta.term, "snapshot term");
    const createdAt = Date.now();
    const id = meta.id ?? `${meta.term}-${meta.index}-${createdAt}`;
    assert(ID_RE.test(id), () => `bad snapshot id ${JSON.stringify(id)}`);
    assert(!this.snaps.some((s) => s.id === id), () => `snapshot ${id} already exists`);
    const tmp = join(this.dir, id + TMP_SUFFIX);
    const final = join(this.dir, id);
    const dataPath = join(tmp, DATA_FILE);
    const hasher = opts.digestGiven ? undefined : new Bun.CryptoHasher("sha256");
    let size = 0;
    let done = false;
    let chain: Promise<unknown> = Promise.resolve();
    // Opened lazily on the first write or close, so create() itself stays synchronous.
    let handle: Promise<fsp.FileHandle> | undefined;
    const fh = () =>
      (handle ??= (async () => {
        try {
          await fsp.rm(tmp, { recursive: true, force: true });
          await fsp.mkdir(tmp, { recursive: true });
          return await fsp.open(dataPath, "wx");
        } catch (e) {
          throw diskError("create", dataPath, e);
        }
      })());
    const sink: SnapshotSink = {
      id,
      write: (chunk) => {
        assert(!done, "write after close/cancel");
        assert(chunk.length <= MAX_WRITE_CHUNK, () => `snapshot chunk of ${chunk.length} bytes exceeds ${MAX_WRITE_CHUNK}`);
        const p = chain.then(async () => {
          const h = await fh();
          try {
            let off = 0;
            while (off < chunk.length) off += (await h.write(chunk, off, chunk.length - off, size + off)).bytesWritten;
          } catch (e) {
            throw diskError("write", dataPath, e);
          }
          hasher?.update(chunk);
          size += chunk.length;
        });
        chain = p;
        return p;
      },
      close: async (check, given) => {
        assert(!done, "close after close/cancel");
        assert((given !== undefined) === (hasher === undefined), "a digest is given to close exactly when the sink was created for one");
        done = true;
        await chain;
        if (given !== undefined) {
          assert(given.size === size, () => `the given digest covers ${given.size} bytes, the sink wrote ${size}`);
          assert(/^[0-9a-f]{64}$/.test(given.sha256), "a given SHA-256 is 64 hex digits");
        }
        const h = await fh();
        try {
          await h.sync();
        } catch (e) {
          throw diskError("fsync", dataPath, e);
        } finally {
          await h.close();
        }
        if (check) {
          try {
            await check(dataPath);
          } catch (e) {
            await fsp.rm(tmp, { recursive: true, force: true });
            throw e;
          }
        }
        const sha256 = hasher === undefined ? given?.sha256 : hasher.digest("hex");
        assert(sha256 !== undefined, "a snapshot's digest is known at close");
        const stored: StoredSnapshot = {
          id,
          index: meta.index,
          term: meta.term,
          config: meta.config,
          size,
          sha256,
          createdAt,
        };
        const metaPath = join(tmp, META_FILE);
        try {
          await fsp.writeFile(metaPath, JSON.stringify(stored));
        } catch (e) {
          throw diskError("write", metaPath, e);
        }
        await fsyncPath(metaPath, "snapshot metadata");
        await fsyncPath(tmp, "snapshot directory");
        try {
          await fsp.rename(tmp, final);
        } catch (e) {
          throw diskError("rename", `${tmp} -> ${final}`, e);
        }
        await fsyncPath(this.dir, "snapshot store directory");
        this.snaps.push(stored);
        this.snaps.sort(newestFirst);
        await this.applyRetention();
        return { ...stored };
      },
      cancel: async () => {
        if (done) return;
        done = true;
        await chain.catch(() => {});
        if (handle) await (await handle.catch(() => undefined))?.close();
        await fsp.rm(tmp, { recursive: true, force: true });
      },
    };
    return sink;
  }

  private async applyRetention(): Promise<void> {
    const drop = this.snaps.splice(this.retain);
    for (const s of drop) {
      try {
        await fsp.rm(join(this.dir, s.id), { recursive: true, force: true });
      } catch (e) {
        throw diskError("remove old snapshot", join(this.dir, s.id), e);
      }
    }
    if (drop.length > 0) await fsyncPath(this.dir, "snapshot store directory");
  }
}
