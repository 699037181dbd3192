// What only the leader does, started when this server establishes leadership and stopped when it
// revokes: lock TTL timers, promotion of caught-up non-voters, and the snapshot schedule. A restore
// that swapped the state re-runs establish (reassert) so the timers match the new state.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/logger.ts";
import type { RawNode } from "../raft/raw_node.ts";
import type { Configuration } from "../raft/storage.ts";
import type { Command } from "../state/commands.ts";
import type { StateStore } from "../state/state_store.ts";
import { LockTimers } from "./lock_timers.ts";
import type { Metrics } from "./metrics.ts";
import type { RaftDriver } from "./raft_driver.ts";

const PROMOTE_CHECK_MS = 1_000;
/** A non-voter within this many entries of the commit index counts as caught up. */
const PROMOTE_LAG_ENTRIES = 16;

/** What leadership duties need from the server. */
export interface LeadershipHost {
  readonly cfg: Config;
  readonly log: Logger;
  readonly stats: Metrics;
  node(): RawNode | undefined;
  driver(): RaftDriver | undefined;
  /** The applied configuration. */
  config(): Configuration;
  state(): StateStore;
  propose(cmd: Command): Promise<unknown>;
  /** Wakes whoever waits for the leader to change. */
  leaderChanged(): void;
  /** Starts the snapshot schedule when one is configured. */
  startSchedule(): { stop(): void } | undefined;
}

interface LeaderDuties {
  locks: LockTimers;
  stop(): void;
}

export class Leadership {
  private duties: LeaderDuties | undefined;

  constructor(private readonly host: LeadershipHost) {}

  /** The lock timers while this server leads. */
  get locks(): LockTimers | undefined {
    return this.duties?.locks;
  }

  onLeaderChange(lead: string, isLeader: boolean, term: number): void {
    this.host.stats.inc("edgenode_raft_leader_changes_total", {}, 1, "observed leader changes");
    this.host.leaderChanged();
    if (isLeader && !this.duties) this.establish(term);
    else if (!isLeader && this.duties) this.revoke();
    if (lead) this.host.log.debug("leader", { id: lead, term });
  }

  private establish(term: number): void {
    const schedule = this.host.startSchedule();
    const locks = new LockTimers(
      (path, lockId) => this.host.propose({ op: "var.lock-expire", path, lockId, now: Date.now() }).then(() => {}),
      this.host.log,
    );
    const n = locks.rebuild(this.host.state());
    const promoter = setInterval(() => this.promoteCaughtUp(), PROMOTE_CHECK_MS);
    this.duties = {
      locks,
      stop: () => {
        locks.stop();
        clearInterval(promoter);
        schedule?.stop();
      },
    };
    this.host.log.info("established leadership", { term, locks: n });
  }

  revoke(): void {
    if (!this.duties) return;
    this.duties.stop();
    this.duties = undefined;
    this.host.log.info("revoked leadership");
  }

  /** Re-run establish-leadership from the current state (after a restore swapped it). */
  reassert(): void {
    const driver = this.host.driver();
    if (!driver?.isLeader) return;
    this.revoke();
    this.establish(driver.term);
  }

  /** One caught-up non-voter per check becomes a voter; a refused change is tried again on the next check. */
  private promoteCaughtUp(): void {
    const node = this.host.node();
    const driver = this.host.driver();
    if (!node || !driver?.isLeader) return;
    const st = node.status();
    for (const s of this.host.config().servers) {
      if (s.voter) continue;
      const p = st.progress?.[s.id];
      if (p && p.match >= st.commit - PROMOTE_LAG_ENTRIES && p.match > 0) {
        try {
          node.proposeConfChange({ type: "promote", id: s.id });
          driver.kick();
          this.host.log.info("promoting caught-up server", { id: s.id });
        } catch (e) {
          // One change at a time: try again on the next check (the interval bounds it; leadership ends it).
          this.host.log.debug("promotion deferred", { id: s.id, reason: (e as Error).message });
        }
        return;
      }
    }
  }
}
