// This server's record of the snapshot saves and restores it took part in: a bounded ring of the last
// ones, kept in memory only (a restart starts it empty: the log and the metrics keep the long view),
// and the restores under way here with their phase and bytes so far. Snapshot.History answers with it.
import { z } from "zod";
import { assert } from "../lib/assert.ts";
import { toEdgeError } from "../lib/errors.ts";

/** How many finished operations a server remembers. */
export const HISTORY_SIZE = 64;
/** Operations under way at once that are tracked; more are still run, only not shown as in progress. */
const MAX_ACTIVE = 16;

/** The most scheduled files a server lists (the newest `retain` of them; snapshot_schedule.ts). */
export const SCHEDULED_LIST_MAX = 100;

/**
 * received: the server the client talked to (for a restore: relaying the upload to its leader); leader:
 * the region's leader that verified, staged and proposed a restore; scheduled: the leader's backup schedule.
 */
export type OpRole = "received" | "leader" | "scheduled";
export type OpKind = "save" | "restore";
/**
 * A restore's phase as an operator reads it: received (bytes arriving), verified (the whole file checked
 * on the leader), staged (held durably by StagedOn servers), committed (its entry applies here), swapped
 * (the new state is in place here). restore_phase.ts names the finer points the crash tests pause at.
 */
export type ProgressPhase = "received" | "verified" | "staged" | "committed" | "swapped";

const opSchema = z.object({
  Kind: z.enum(["save", "restore"]),
  Role: z.enum(["received", "leader", "scheduled"]),
  DryRun: z.boolean().optional(),
  /** RFC 3339. */
  Start: z.string().max(64),
  DurationMs: z.number().nonnegative(),
  Bytes: z.number().int().nonnegative(),
  Outcome: z.enum(["ok", "error"]),
  Error: z.object({ Code: z.string().max(64), Message: z.string().max(4096) }).optional(),
  /** A save's index; a restore's committed index (a dry run's: the file's); 0 when it failed first. */
  Index: z.number().int().nonnegative(),
});

const progressSchema = z.object({
  Kind: z.enum(["save", "restore"]),
  Role: z.enum(["received", "leader", "scheduled"]),
  DryRun: z.boolean().optional(),
  Start: z.string().max(64),
  Phase: z.enum(["received", "verified", "staged", "committed", "swapped"]),
  Bytes: z.number().int().nonnegative(),
  StagedOn: z.number().int().nonnegative().optional(),
});

const scheduledSchema = z.object({
  Name: z.string().max(256),
  Index: z.number().int().nonnegative(),
  Size: z.number().int().nonnegative(),
  /** RFC 3339, the file's modification time. */
  Modified: z.string().max(64),
});

/** Snapshot.History's answer: one server's operations (newest first), a restore under way, its scheduled files. */
export const historySchema = z.object({
  Ops: z.array(opSchema).max(HISTORY_SIZE),
  InProgress: progressSchema.optional(),
  Scheduled: z.array(scheduledSchema).max(SCHEDULED_LIST_MAX),
});

export type HistoryOp = z.infer<typeof opSchema>;
export type OpProgress = z.infer<typeof progressSchema>;
export type ScheduledFile = z.infer<typeof scheduledSchema>;
export type ServerHistory = z.infer<typeof historySchema>;

/** GET /v1/operator/snapshot/history: each server's history, or why it has none (Error; Ops and Scheduled empty). */
export interface SnapshotHistoryReply {
  Servers: ({ ID: string; Node: string; Address: string; Error?: string } & ServerHistory)[];
}

/** One operation under way: what its code reports as it goes, and how it ended. */
export interface OpHandle {
  /** Bytes moved so far (received, relayed, written). */
  bytes(n: number): void;
  phase(p: ProgressPhase, stagedOn?: number): void;
  ok(index: number): void;
  failed(e: unknown): void;
}

/** What the save, restore and schedule modules record through. */
export interface SnapshotRecorder {
  start(kind: OpKind, role: OpRole, dryRun?: boolean): OpHandle;
  /** A committed restore reached `p` here: every restore under way here is at it (restore_apply.ts). */
  atPhase(p: ProgressPhase): void;
}

/** `run` recorded on `op`: ok with the index `indexOf` reads from its result, or failed with its error. */
export async function recorded<T>(op: OpHandle, run: () => Promise<T>, indexOf: (r: T) => number): Promise<T> {
  try {
    const r = await run();
    op.ok(indexOf(r));
    return r;
  } catch (e) {
    op.failed(e);
    throw e;
  }
}

/** The `Index` of a reply such as a restore's ({Index}) or a dry run's; 0 when it has none. */
export function replyIndex(r: unknown): number {
  const i = (r as { Index?: unknown } | null)?.Index;
  return typeof i === "number" && Number.isSafeInteger(i) && i >= 0 ? i : 0;
}

interface Active {
  p: OpProgress;
  t0: number;
}

export class SnapshotHistory implements SnapshotRecorder {
  private readonly done: HistoryOp[] = [];
  /** In start order: the first is the one shown as in progress. */
  private readonly active = new Set<Active>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  start(kind: OpKind, role: OpRole, dryRun = false): OpHandle {
    const a: Active = {
      p: { Kind: kind, Role: role, ...(dryRun ? { DryRun: true } : {}), Start: new Date().toISOString(), Phase: "received", Bytes: 0 },
      t0: this.now(),
    };
    if (this.active.size < MAX_ACTIVE) this.active.add(a);
    let ended = false;
    const end = (outcome: Pick<HistoryOp, "Outcome" | "Index" | "Error">) => {
      if (ended) return;
      ended = true;
      this.active.delete(a);
      const { Phase: _, StagedOn: __, ...p } = a.p;
      this.push({ ...p, DurationMs: Math.max(0, Math.round(this.now() - a.t0)), ...outcome });
    };
    return {
      bytes: (n) => {
        a.p.Bytes = Math.max(a.p.Bytes, Math.floor(n));
      },
      phase: (phase, stagedOn) => {
        a.p.Phase = phase;
        if (stagedOn !== undefined) a.p.StagedOn = stagedOn;
      },
      ok: (index) => end({ Outcome: "ok", Index: index }),
      failed: (e) => {
        const err = toEdgeError(e);
        end({ Outcome: "error", Index: 0, Error: { Code: err.code, Message: err.message.slice(0, 4096) } });
      },
    };
  }

  atPhase(p: ProgressPhase): void {
    for (const a of this.active) if (a.p.Kind === "restore") a.p.Phase = p;
  }

  private push(op: HistoryOp): void {
    this.done.push(op);
    if (this.done.length > HISTORY_SIZE) this.done.shift();
    assert(this.done.length <= HISTORY_SIZE, "the history ring stays bounded");
  }

  /** Finished operations, newest first. */
  ops(): HistoryOp[] {
    return [...this.done].reverse();
  }

  /** The oldest restore under way here (a second one is refused while it runs), if any. */
  inProgress(): OpProgress | undefined {
    for (const a of this.active) if (a.p.Kind === "restore") return { ...a.p };
    return undefined;
  }
}

/** A server without a record (unit tests' hosts) records nothing. */
export const NO_HISTORY: SnapshotRecorder = {
  start: () => ({ bytes: () => {}, phase: () => {}, ok: () => {}, failed: () => {} }),
  atPhase: () => {},
};
