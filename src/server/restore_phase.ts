// The restore's test hook for the crash matrix: a restore reaching a named phase waits there while a
// file in the data dir names that phase, so a test kills a server provably in it. Unset, as in
// production, a phase point does nothing (callers test `pausable` first: not even a microtask).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../lib/logger.ts";

/** The name of the pause file in the data dir (EDGENODE_TEST_PAUSE_FILE), if the hook is on. */
const PAUSE_FILE = process.env.EDGENODE_TEST_PAUSE_FILE || undefined;
const PAUSE_POLL_MS = 10;

/** Whether the hook is on at all. */
export const pausable = PAUSE_FILE !== undefined;

/**
 * upload: the leader holds part of the upload (the peers what it passed on). verified: the leader verified
 * and built the whole file; the peers have received and built what it passed on, but no peer holds a
 * durable staged file (each waits for the end of its stream). stage: this peer holds the staged file
 * durably (and its state built, unless it relays the upload) and has not answered the leader.
 * staged: a quorum holds the file, the entry is not proposed. apply: the entry is committed and applying
 * here, the old state still served. swapped: the new state is in place here (on the leader, before it answers).
 */
export type RestorePhase = "upload" | "verified" | "stage" | "staged" | "apply" | "swapped";

export type PhasePoint = (phase: RestorePhase, fields?: Record<string, unknown>) => Promise<void>;

/** The phase point of a server whose data dir is `dataDir()`. */
export function phasePoint(dataDir: () => string, log: Logger): PhasePoint {
  return async (phase, fields = {}) => {
    if (!PAUSE_FILE) return;
    const dir = dataDir();
    if (!dir) return;
    const file = join(dir, PAUSE_FILE);
    const named = () => {
      try {
        return readFileSync(file, "utf8").trim() === phase;
      } catch {
        return false;
      }
    };
    if (!named()) return;
    log.warn("test hook: paused at restore phase", { phase, ...fields });
    while (named()) await Bun.sleep(PAUSE_POLL_MS);
    log.warn("test hook: resumed", { phase });
  };
}

/** `chunks`, pausing at phase "upload" once the first has passed on. */
export async function* pauseAfterFirst(chunks: AsyncIterable<Uint8Array>, phase: PhasePoint): AsyncGenerator<Uint8Array> {
  let bytes = 0;
  let n = 0;
  for await (const c of chunks) {
    if (n++ === 1) await phase("upload", { bytes });
    bytes += c.byteLength;
    yield c;
  }
}
