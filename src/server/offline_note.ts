// What an offline command (raft recover, snapshot restore -offline) did to a data directory, noted in
// the directory so that the server, at its next start, logs it and counts it: the agent's log and
// metrics then show that this server's membership or state was set by hand, and when.
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../lib/logger.ts";
import type { Metrics } from "./metrics.ts";

export const NOTE_FILE = "offline-operation.json";
const MAX_NOTE_BYTES = 64 * 1024;

export interface OfflineNote {
  /** "raft recover" or "snapshot restore -offline". */
  op: string;
  at: string;
  fields: Record<string, string | number>;
}

/** Written after the command's change is durable; a crash in between leaves the change un-noted, not a false note. */
export function writeOfflineNote(dataDir: string, op: string, fields: Record<string, string | number>): void {
  const path = join(dataDir, NOTE_FILE);
  const note: OfflineNote = { op, at: new Date().toISOString(), fields };
  writeFileSync(`${path}.tmp`, JSON.stringify(note), { mode: 0o600, flush: true });
  renameSync(`${path}.tmp`, path);
}

/** At start: logs and counts the note, if any, and removes it (it is reported once). */
export function reportOfflineNote(dataDir: string, log: Logger, stats: Metrics): void {
  const path = join(dataDir, NOTE_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return;
  }
  let note: Partial<OfflineNote> | undefined;
  try {
    note = text.length <= MAX_NOTE_BYTES ? (JSON.parse(text) as Partial<OfflineNote>) : undefined;
  } catch {
    note = undefined;
  }
  const op = typeof note?.op === "string" ? note.op : "unknown";
  const fields: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(note?.fields ?? {})) if (typeof v === "string" || typeof v === "number") fields[k] = v;
  log.warn(`starting on a data directory changed offline by "${op}"`, { at: String(note?.at ?? "?"), ...fields });
  stats.inc("edgenode_offline_operations_total", { op }, 1, "offline recover/restore runs this server started after");
  rmSync(path, { force: true });
}
