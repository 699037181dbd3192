// Leader-only scheduled backups: every `interval` the leader writes a snapshot
// file into `path` (named with time and index, written to a temp name, fsynced,
// renamed) and keeps the newest `retain`. Started in establish-leadership and
// stopped in revoke, so a new leader takes it over.
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir } from "./staged_snapshots.ts";
import type { Logger } from "../lib/logger.ts";
import type { Metrics } from "./metrics.ts";
import { SCHEDULED_LIST_MAX, type ScheduledFile, type SnapshotRecorder } from "./snapshot_history.ts";
import { type StateSource, writeStateFile } from "./snapshot_save.ts";

/** What the schedule needs of the server: its state, and where to log and count. */
export interface ScheduleHost extends StateSource {
  readonly log: Logger;
  readonly stats: Metrics;
  readonly history: SnapshotRecorder;
}

export interface ScheduleConfig {
  interval: number;
  retain: number;
  path: string;
}

const NAME_RE = /^edgenode-\d{8}-\d{6}-(\d+)\.snap$/;

export function backupName(now: Date, index: number): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `edgenode-${stamp}-${index}.snap`;
}

export class SnapshotSchedule {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly s: ScheduleHost,
    private readonly cfg: ScheduleConfig,
  ) {}

  start(): void {
    this.arm();
    this.s.log.info("snapshot schedule started", { interval_ms: this.cfg.interval, retain: this.cfg.retain, path: this.cfg.path });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runOnce()
        .catch((e: unknown) => {
          this.s.stats.inc("edgenode_snapshot_schedule_total", { outcome: "error" });
          this.s.log.error("scheduled snapshot failed", { error: (e as Error).message });
        })
        .finally(() => {
          this.arm();
        });
    }, this.cfg.interval);
  }

  /** Take one backup now and prune to `retain`; returns the file's path. */
  async runOnce(): Promise<string> {
    const op = this.s.history.start("save", "scheduled");
    try {
      const { file, index, size } = await this.write();
      op.bytes(size);
      op.ok(index);
      return file;
    } catch (e) {
      op.failed(e);
      throw e;
    }
  }

  private async write(): Promise<{ file: string; index: number; size: number }> {
    await mkdir(this.cfg.path, { recursive: true, mode: 0o700 });
    const tmp = join(this.cfg.path, `.backup-${crypto.randomUUID()}.tmp`);
    const saved = await writeStateFile(this.s, tmp, true);
    const final = join(this.cfg.path, backupName(new Date(), saved.index));
    await rename(tmp, final);
    await fsyncDir(this.cfg.path);
    this.s.stats.inc("edgenode_snapshot_schedule_total", { outcome: "ok" }, 1, "scheduled snapshots by outcome");
    this.s.log.info("scheduled snapshot written", { file: final, index: saved.index, bytes: saved.size });
    const names = (await readdir(this.cfg.path)).filter((n) => NAME_RE.test(n)).sort();
    for (const old of names.slice(0, Math.max(0, names.length - this.cfg.retain))) await rm(join(this.cfg.path, old), { force: true });
    return { file: final, index: saved.index, size: saved.size };
  }
}

/**
 * The scheduled snapshot files in `cfg.path`, newest first: the newest `retain` (at most SCHEDULED_LIST_MAX), read
 * from their names and a stat, never opened. A file gone between the listing and its stat is left out.
 */
export async function scheduledFiles(cfg: ScheduleConfig): Promise<ScheduledFile[]> {
  let names: string[];
  try {
    names = await readdir(cfg.path);
  } catch {
    return []; // no backup written yet (the schedule makes the directory)
  }
  // The names sort by time: the stamp is fixed-width UTC.
  const newest = names
    .filter((n) => NAME_RE.test(n))
    .sort()
    .reverse()
    .slice(0, Math.min(Math.max(cfg.retain, 1), SCHEDULED_LIST_MAX));
  const files = await Promise.all(
    newest.map(async (name): Promise<ScheduledFile | undefined> => {
      try {
        const st = await stat(join(cfg.path, name));
        const index = Number(NAME_RE.exec(name)?.[1] ?? 0);
        return { Name: name, Index: Number.isSafeInteger(index) ? index : 0, Size: st.size, Modified: st.mtime.toISOString() };
      } catch {
        return undefined;
      }
    }),
  );
  return files.filter((f) => f !== undefined);
}
