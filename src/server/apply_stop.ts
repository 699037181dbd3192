// An entry this server does not understand stops its apply, never its agreement. Nomad's FSM skips an
// unknown message type (its state parts from the others') or panics (the quorum loses a voter); here
// the server stops applying at that entry and keeps everything else: it persists, acknowledges and
// votes, so the cluster keeps its quorum, but it does not stand for election (raft.ts mayCampaign) and,
// as leader, hands leadership away. It says so: unhealthy with the index and the release it needs, a
// log line once a minute, a metric; reads that would show its state, older than its commit, are refused
// (stale reads are served and say how far behind they are). Restarted on a binary that understands the
// entry, it applies on from that index: nothing at or after it was applied, snapshotted or compacted
// (snapshots are taken at the applied index, and the log is compacted only below a snapshot).
//
// "Not understood" is told from "invalid" by what the entry says of itself, never by whether applying it
// fails: a command this binary knows and refuses (a CAS conflict, a bad argument) is refused alike on
// every server and stays a refusal. An entry is not understood when
//  - its op is not one this binary knows (neither a state command nor a registered server op): every
//    server of a release knows the same ops, and an op is only ever written by a release that knows it;
//  - it names a feature (`feature`) this binary is not built with (a test-only feature: features.ts);
//  - it says it needs a release (`needs`) newer than this one: how a later release marks an entry whose
//    op is known here but whose meaning changed (a new field a strict schema here would refuse).
import { EdgeError, hasCode } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { VERSION } from "../lib/version.ts";
import { commandSchema } from "../state/commands.ts";
import { compareVersions, FEATURES, parseVersion } from "./features.ts";
import type { Metrics } from "./metrics.ts";

/** What a server reports about the entry it stopped at (health, agent self, the refusal's detail). */
export interface NotUnderstood {
  Index: number;
  Op: string;
  Feature?: string;
  /** The release the entry needs, or "a release newer than X" when it does not say. */
  Needs: string;
  Message: string;
}

/** The state machine's own command ops (state/commands.ts). */
const COMMAND_OPS: ReadonlySet<string> = new Set(commandSchema.options.map((o) => o.shape.op.value));

/**
 * Whether the decoded entry at `index` is one this binary does not understand (see the header), and why;
 * undefined when it is understood or malformed (a malformed entry is refused alike everywhere).
 */
export function notUnderstood(index: number, cmd: unknown, serverOp: (op: string) => boolean): NotUnderstood | undefined {
  if (!cmd || typeof cmd !== "object") return undefined;
  const { op, feature, needs } = cmd as Record<string, unknown>;
  if (typeof op !== "string") return undefined;
  const named = typeof feature === "string" ? feature.slice(0, 64) : undefined;
  const release = typeof needs === "string" && parseVersion(needs) ? needs : undefined;
  // A binary whose own version does not parse (never a release build) takes no entry as from a newer one.
  const newer = release !== undefined && parseVersion(VERSION) !== undefined && compareVersions(release, VERSION) > 0;
  const unknownFeature = named !== undefined && !Object.hasOwn(FEATURES, named);
  const unknownOp = !COMMAND_OPS.has(op) && !serverOp(op);
  if (!newer && !unknownFeature && !unknownOp) return undefined;
  const shownOp = op.slice(0, 64);
  const Needs = release ?? `a release newer than ${VERSION}`;
  const what = named ? `${Needs} built with feature ${named}` : Needs;
  return {
    Index: index,
    Op: shownOp,
    ...(named ? { Feature: named } : {}),
    Needs,
    Message:
      `entry ${index} (op ${shownOp}${named ? `, feature ${named}` : ""}) is not understood by this binary (${VERSION}); ` +
      `it needs ${what}: this server stopped applying at index ${index} and keeps replicating and voting; ` +
      `start it on a binary that understands the entry and it applies on from there`,
  };
}

/** The state machine's refusal that stops the applier (raft_driver.ts): code NOT_APPLIED, the report as detail. */
export function notUnderstoodError(n: NotUnderstood): EdgeError {
  return new EdgeError("NOT_APPLIED", n.Message, n);
}

/** The report carried by a NOT_APPLIED refusal; undefined for any other error. */
export function reportOf(e: unknown): NotUnderstood | undefined {
  if (!hasCode(e, "NOT_APPLIED")) return undefined;
  return (e as { detail?: NotUnderstood }).detail;
}

/** How often the stop is logged again while it lasts. */
const LOG_EVERY_MS = 60_000;

/** What the server's stop needs from the rest. */
export interface ApplyStopHost {
  readonly log: Logger;
  readonly stats: Metrics;
  /** Raft may no longer stand for election here (and hands leadership away if it leads). */
  forbidCampaign(): void;
  /** Entries committed here and not applied (the commit index less the applied one). */
  behind(): number;
  /** How often the stop is logged again; LOG_EVERY_MS unless a test says. */
  readonly logEveryMs?: number;
}

/** This server's stop, once the applier met an entry it does not understand: what it reports and refuses. */
export class ApplyStop {
  private report: NotUnderstood | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly h: ApplyStopHost) {
    h.stats.gauge("edgenode_apply_stopped_index", "the index of the entry this server stopped applying at (0: applying)", () =>
      this.report ? this.report.Index : 0,
    );
  }

  /** The stop's report, undefined while applying. */
  get stopped(): NotUnderstood | undefined {
    return this.report;
  }

  /** The applier stopped at an entry (the driver calls this once, with the NOT_APPLIED refusal). */
  stop(index: number, e: unknown): void {
    if (this.report) return;
    this.report = reportOf(e) ?? {
      Index: index,
      Op: "",
      Needs: `a release newer than ${VERSION}`,
      Message: `entry ${index} is not understood by this binary (${VERSION})`,
    };
    this.h.forbidCampaign();
    this.logNow();
    this.timer = setInterval(() => this.logNow(), this.h.logEveryMs ?? LOG_EVERY_MS);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Entries committed here and not applied while stopped (stale reads' X-Edgenode-Behind); undefined while applying. */
  behind(): number | undefined {
    return this.report ? this.h.behind() : undefined;
  }

  /** Shutdown: no more log lines. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The refusal of a read that needs this server's state to be current (a 503 naming the index). */
  refusal(what: string): EdgeError | undefined {
    const r = this.report;
    if (!r) return undefined;
    return new EdgeError("NOT_APPLIED", `${what} refused: this server is ${this.h.behind()} entries behind its commit. ${r.Message}`, r);
  }

  private logNow(): void {
    const r = this.report;
    if (!r) return;
    this.h.log.error("apply stopped at an entry this binary does not understand", {
      index: r.Index,
      op: r.Op,
      needs: r.Needs,
      ...(r.Feature ? { feature: r.Feature } : {}),
      behind: this.h.behind(),
      version: VERSION,
    });
  }
}
