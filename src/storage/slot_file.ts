// A small record (at most slotBytes - 24) kept as two checksummed copies in one file, written
// alternately with one fdatasync each: a torn write damages only the copy being written, and the
// reader takes the valid copy with the higher sequence number. Used by the stable store and the log's metadata.
import { dirname } from "node:path";
import { assert } from "../lib/assert.ts";
import { decode, encode } from "../lib/codec.ts";
import type { Disk, DiskFile } from "./disk.ts";
import { CorruptError } from "./disk_error.ts";

const MAGIC = 0x534c4f54; // "SLOT"
const VERSION = 1;
const HEADER = 24; // magic u32, version u32, seq lo u32, seq hi u32, length u32, crc u32

export const DEFAULT_SLOT_BYTES = 64 * 1024;

interface Slot {
  seq: number;
  value: unknown;
}

function parseSlot(buf: Uint8Array): Slot | undefined {
  if (buf.length < HEADER) return undefined;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== VERSION) return undefined;
  const seq = v.getUint32(8, true) + v.getUint32(12, true) * 2 ** 32;
  const len = v.getUint32(16, true);
  if (HEADER + len > buf.length) return undefined;
  const crc = Bun.hash.crc32(buf.subarray(8, 20), 0);
  if (Bun.hash.crc32(buf.subarray(HEADER, HEADER + len), crc) !== v.getUint32(20, true)) return undefined;
  try {
    return { seq, value: decode(buf.slice(HEADER, HEADER + len)) };
  } catch {
    return undefined;
  }
}

/**
 * The version of a copy written by a newer edgenode (its checksum holds, its version is above ours), else
 * undefined. Such a file is refused whole: taking the other, older copy would roll the record back.
 */
function newerVersion(buf: Uint8Array): number | undefined {
  if (buf.length < HEADER) return undefined;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = v.getUint32(4, true);
  const len = v.getUint32(16, true);
  if (v.getUint32(0, true) !== MAGIC || version <= VERSION || HEADER + len > buf.length) return undefined;
  const crc = Bun.hash.crc32(buf.subarray(8, 20), 0);
  return Bun.hash.crc32(buf.subarray(HEADER, HEADER + len), crc) === v.getUint32(20, true) ? version : undefined;
}

function renderSlot(seq: number, value: unknown, slotBytes: number): Uint8Array {
  const payload = encode(value);
  assert(HEADER + payload.length <= slotBytes, () => `record of ${payload.length} bytes exceeds slot of ${slotBytes}`);
  const out = new Uint8Array(HEADER + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, VERSION, true);
  v.setUint32(8, seq >>> 0, true);
  v.setUint32(12, Math.floor(seq / 2 ** 32), true);
  v.setUint32(16, payload.length, true);
  out.set(payload, HEADER);
  const crc = Bun.hash.crc32(out.subarray(8, 20), 0);
  v.setUint32(20, Bun.hash.crc32(payload, crc), true);
  return out;
}

export class SlotFile {
  private seq: number;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: DiskFile,
    private readonly slotBytes: number,
    seq: number,
    private current: unknown,
  ) {
    this.seq = seq;
  }

  /**
   * Open path, or create it holding `initial` (written under a temporary name, synced, renamed and
   * the directory synced, so a crash during creation leaves either no file or a complete one).
   */
  static async open(disk: Disk, path: string, initial: unknown, slotBytes = DEFAULT_SLOT_BYTES): Promise<SlotFile> {
    if (!disk.exists(path)) {
      const tmp = `${path}.tmp`;
      const f = disk.open(tmp, true);
      try {
        f.truncate(0);
        f.write(renderSlot(1, initial, slotBytes), slotBytes); // slot 1 holds odd sequence numbers
        f.truncate(2 * slotBytes);
        await f.sync();
      } finally {
        f.close();
      }
      disk.rename(tmp, path);
      await disk.syncDir(dirname(path));
    }
    const file = disk.open(path, false);
    const buf = new Uint8Array(2 * slotBytes);
    file.read(buf, 0);
    const newer = newerVersion(buf.subarray(0, slotBytes)) ?? newerVersion(buf.subarray(slotBytes));
    if (newer !== undefined) {
      file.close();
      throw new CorruptError(
        `${path}: written by a newer edgenode (record format version ${newer}; this edgenode reads version ${VERSION}): start it with a newer edgenode`,
      );
    }
    const a = parseSlot(buf.subarray(0, slotBytes));
    const b = parseSlot(buf.subarray(slotBytes));
    const best = a && b ? (a.seq > b.seq ? a : b) : (a ?? b);
    if (!best) {
      file.close();
      throw new CorruptError(`${path}: both copies of the record are damaged (checksum mismatch at offsets 0 and ${slotBytes})`);
    }
    return new SlotFile(file, slotBytes, best.seq, best.value);
  }

  get value(): unknown {
    return this.current;
  }

  /** Durably replace the record. Calls are serialized; the new value is visible once written. */
  write(value: unknown): Promise<void> {
    const run = async () => {
      const seq = this.seq + 1;
      const bytes = renderSlot(seq, value, this.slotBytes);
      this.file.write(bytes, (seq % 2) * this.slotBytes);
      await this.file.sync();
      this.seq = seq;
      this.current = value;
    };
    const p = this.chain.then(run);
    // A failure poisons later writes too: the record's durability is unknown after a failed fsync.
    this.chain = p;
    return p;
  }

  close(): void {
    this.file.close();
  }
}
