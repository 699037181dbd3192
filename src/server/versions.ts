// What release each server runs, as the leader learns it, and the cluster version it writes from that.
// Every server answers Status.Versions with its release and the newest formats it reads; a 0.1.0 server
// has no such method and answers "unknown rpc method", which is how it is known. The leader asks every
// server of the configuration each round and, once all of them have answered, commits the lowest
// release as the cluster version when it is higher than the committed one. Features (features.ts) are
// used only once the committed cluster version reaches the release that introduced them.
import { z } from "zod";
import { EdgeError, hasCode } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { VERSION } from "../lib/version.ts";
import type { ConnPool } from "../transport/pool.ts";
import type { ClusterVersionOp, CommittedVersion } from "./cluster_version.ts";
import {
  allows,
  compareVersions,
  FIRST_RELEASE,
  FIRST_RELEASE_FORMATS,
  type FeatureName,
  FORMATS,
  type Formats,
  feature,
  releaseOf,
  SNAPSHOT_FORMAT_FEATURE,
} from "./features.ts";
import type { Members } from "./members.ts";

/** How often the leader asks every server (and how old an answer may be before a reader asks again). */
const ROUND_MS = 2_000;
const ASK_TIMEOUT_MS = 1_000;

/** `ApplyStopped` of a server's answer, for the configuration as list-peers shows it (absent while it applies). */
export function stoppedOf(a: Answer | undefined): { ApplyStopped?: { Index: number; Needs: string } } {
  return a && "report" in a && a.report.ApplyStopped ? { ApplyStopped: a.report.ApplyStopped } : {};
}

/** What a server says about itself (Status.Versions), or what is known of a 0.1.0 server. */
export interface VersionReport {
  Version: string;
  Formats: Formats;
  /** True when the server did not say: it has no Status.Versions method, so it runs the first release. */
  Inferred: boolean;
  /** Set while the server's apply is stopped at an entry it does not understand (apply_stop.ts). */
  ApplyStopped?: { Index: number; Needs: string };
}

const formatsSchema = z.object({ Log: z.number().int().min(1), Snapshot: z.number().int().min(1), Rpc: z.number().int().min(1) });
const stoppedSchema = z.object({ Index: z.number().int().min(1), Needs: z.string().max(128) });
const reportSchema = z.object({
  ID: z.string().max(256),
  Version: z.string().max(64),
  Formats: formatsSchema,
  ApplyStopped: stoppedSchema.optional(),
});

/** This server's own answer to Status.Versions. */
export function ownReport(id: string) {
  return { ID: id, Version: VERSION, Formats: { ...FORMATS } };
}

/** One server's answer in a round: its report, or why there is none (never read as any version). */
export type Answer = { report: VersionReport } | { error: string };

/** The version shown for a server: what it reported, or "" when it has not answered. */
export function shownVersion(a: Answer | undefined): string {
  return a && "report" in a ? a.report.Version : "";
}

/** What the versions module needs from the server. */
export interface VersionsHost {
  readonly log: Logger;
  readonly pool: ConnPool;
  readonly members: Members;
  nodeId(): string;
  isLeader(): boolean;
  stopping(): boolean;
  committed(): CommittedVersion;
  /** This server's own apply stop (apply_stop.ts), shown beside its version. */
  applyStopped?(): { Index: number; Needs: string } | undefined;
  /** Proposes the entry on the leader; resolves once it is applied here. */
  propose(op: ClusterVersionOp): Promise<unknown>;
}

export class ServerVersions {
  private answers = new Map<string, Answer>();
  private answeredAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private raising = false;
  /** The last "cannot lower" warning, so it is logged when the situation changes, not every round. */
  private warned = "";

  constructor(private readonly host: VersionsHost) {}

  /** Rounds every ROUND_MS; a round runs only on the leader (readers elsewhere ask on demand). */
  start(): void {
    this.timer = setInterval(() => {
      if (this.host.isLeader() && !this.host.stopping()) void this.round().then(() => this.raise());
    }, ROUND_MS);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** This server just became the leader: a round now rather than at the next tick. Resolves after its raise. */
  leading(): Promise<void> {
    return this.round().then(() => this.raise());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Each server's answer, asked again when the last round is older than a round. */
  async current(): Promise<ReadonlyMap<string, Answer>> {
    if (performance.now() - this.answeredAt > ROUND_MS) await this.round();
    return this.answers;
  }

  /** Refuses `name` (CONFLICT, a 409) until the committed cluster version allows it, naming the servers too old. */
  async require(name: FeatureName): Promise<void> {
    const committed = this.host.committed().version;
    const since = feature(name).since;
    if (allows(committed, name)) {
      // A server put back on an older release after the raise (the leader warns of it) could not apply
      // the feature's entries either: while its last answer says so, the feature waits for it too.
      const back = this.rolledBack(since);
      if (back.length === 0) return;
      throw new EdgeError(
        "CONFLICT",
        `feature ${name} needs ${since} on every server; the cluster version is ${committed}, but servers run older releases again: ${back.join("; ")}`,
        { Feature: name, Needs: since, ClusterVersion: committed, Servers: back },
      );
    }
    const answers = await this.current();
    const old: string[] = [];
    for (const s of this.host.members.config.servers) {
      const a = answers.get(s.id);
      const who = this.host.members.names.get(s.id) ?? s.id;
      if (!a) old.push(`${who} (${s.id}): not asked yet`);
      else if ("error" in a) old.push(`${who} (${s.id}): version unknown (${a.error})`);
      else if (compareVersions(a.report.Version, since) < 0) old.push(`${who} (${s.id}) runs ${a.report.Version}`);
    }
    const why =
      old.length > 0
        ? `servers too old: ${old.join("; ")}`
        : "every server is new enough; the leader commits the new cluster version within a few seconds";
    throw new EdgeError("CONFLICT", `feature ${name} needs cluster version ${since}; the cluster version is ${committed}: ${why}`, {
      Feature: name,
      Needs: since,
      ClusterVersion: committed,
      Servers: old,
    });
  }

  /**
   * Whether `name` may be used now, for a feature with an older way to fall back on: the committed cluster
   * version allows it and no server's last answer says it runs an older release again.
   */
  allowed(name: FeatureName): boolean {
    return allows(this.host.committed().version, name) && this.rolledBack(feature(name).since).length === 0;
  }

  /** The servers of the configuration whose last answer (no round is waited for) is a release below `since`. */
  private rolledBack(since: string): string[] {
    const out: string[] = [];
    for (const s of this.host.members.config.servers) {
      const a = this.answers.get(s.id);
      if (a && "report" in a && compareVersions(a.report.Version, since) < 0)
        out.push(`${this.host.members.names.get(s.id) ?? s.id} (${s.id}) runs ${a.report.Version}`);
    }
    return out;
  }

  /** A snapshot file of `format` is restored only once every server reads it (SNAPSHOT_FORMAT_FEATURE). */
  async snapshotFormatAllowed(format: number): Promise<void> {
    const needs = SNAPSHOT_FORMAT_FEATURE[format];
    if (needs) await this.require(needs);
  }

  /**
   * The leader's check of a joining server, once a cluster version has been committed: one running an
   * older release could not apply what the cluster writes from then on, so it does not join (it retries
   * each formation round, and gets in once it runs a new enough release). One whose version cannot be
   * learnt does not join either: it may be that older release.
   */
  async admit(id: string, address: string): Promise<void> {
    const committed = this.host.committed();
    if (!committed.written) return;
    const a = await this.askOne(id, address);
    if ("error" in a) throw new EdgeError("UNAVAILABLE", `the version of joining server ${id} (${address}) is unknown: ${a.error}`);
    if (compareVersions(a.report.Version, committed.version) < 0)
      throw new EdgeError(
        "CONFLICT",
        `server ${id} runs ${a.report.Version}, below the cluster version ${committed.version}: it could not apply what the cluster writes; run ${committed.version} or newer on it`,
      );
  }

  /** Asks every server of the configuration once; concurrent callers share the round. */
  private round(): Promise<void> {
    this.inFlight ??= this.ask().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async ask(): Promise<void> {
    const h = this.host;
    const servers = h.members.config.servers;
    const next = new Map<string, Answer>();
    await Promise.all(
      servers.map(async (s) => {
        if (s.id === h.nodeId()) {
          const stopped = h.applyStopped?.();
          next.set(s.id, {
            report: { Version: VERSION, Formats: { ...FORMATS }, Inferred: false, ...(stopped ? { ApplyStopped: stopped } : {}) },
          });
          return;
        }
        next.set(s.id, await this.askOne(s.id, s.address));
      }),
    );
    this.answers = next;
    this.answeredAt = performance.now();
  }

  private async askOne(id: string, address: string): Promise<Answer> {
    try {
      const r = reportSchema.safeParse(await this.host.pool.call(address, "Status.Versions", {}, { timeoutMs: ASK_TIMEOUT_MS }));
      if (!r.success || r.data.ID !== id || !releaseOf(r.data.Version)) return { error: "an answer that is not a version report" };
      const stopped = r.data.ApplyStopped;
      return {
        report: { Version: r.data.Version, Formats: r.data.Formats, Inferred: false, ...(stopped ? { ApplyStopped: stopped } : {}) },
      };
    } catch (e) {
      // Only this refusal says "0.1.0": a server that cannot be reached, or fails otherwise, is no version.
      if (hasCode(e, "NOT_FOUND") && /unknown rpc method Status\.Versions/.test(String((e as Error).message)))
        return { report: { Version: FIRST_RELEASE, Formats: { ...FIRST_RELEASE_FORMATS }, Inferred: true } };
      return { error: e instanceof Error ? e.message : String(e) };
    }
  }

  /**
   * The leader commits the lowest release of the configuration when it is above the committed one. Not
   * until every server answered: one that cannot be reached may have come back on an older binary. Non-
   * voters count: they are promoted once caught up, and must apply every entry before that. The first
   * entry waits until every server runs a release that knows the op: an older one refuses an op it does
   * not know, on its own, and its state would part from the others'.
   */
  private async raise(): Promise<void> {
    const h = this.host;
    if (this.raising || !h.isLeader()) return;
    const servers = h.members.config.servers;
    let lowest: string | undefined;
    for (const s of servers) {
      const a = this.answers.get(s.id);
      if (!a || "error" in a) return;
      const v = releaseOf(a.report.Version);
      if (!v) return;
      if (lowest === undefined || compareVersions(v, lowest) < 0) lowest = v;
    }
    if (lowest === undefined) return;
    const committed = h.committed();
    const c = compareVersions(lowest, committed.version);
    if (c < 0 && committed.written) {
      const msg = `a server runs ${lowest}, below the committed cluster version ${committed.version}; it cannot apply what the cluster writes`;
      if (msg !== this.warned) h.log.warn(msg);
      this.warned = msg;
      return;
    }
    this.warned = "";
    if (c <= 0 && committed.written) return;
    if (!allows(lowest, "cluster-version")) return;
    this.raising = true;
    try {
      await h.propose({ op: "cluster_version", version: lowest });
      h.log.info("cluster version committed", { version: lowest });
    } catch (e) {
      h.log.debug("cluster version not committed; next round tries again", { error: e instanceof Error ? e.message : String(e) });
    } finally {
      this.raising = false;
    }
  }
}
