// What only the leader does, started when this server establishes leadership and stopped when it
// revokes: lock TTL timers, autopilot (promotion of stable non-voters, removal of dead voters:
// autopilot.ts), and the snapshot schedule. A restore
// that swapped the state re-runs establish (reassert) so the timers match the new state.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../lib/logger.ts";
import type { RawNode } from "../raft/raw_node.ts";
import type { Configuration } from "../raft/storage.ts";
import type { Command } from "../state/commands.ts";
import type { StateStore } from "../state/state_store.ts";
import { Autopilot, type AutopilotConfig } from "./autopilot.ts";
import { LockTimers } from "./lock_timers.ts";
import type { Metrics } from "./metrics.ts";
import type { RaftDriver } from "./raft_driver.ts";

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
  /** A raft tick's length (the core counts time in ticks). */
  readonly tickMs: number;
  /** Autopilot's configuration in effect (autopilot_endpoints.ts inEffect). */
  autopilotSettings(): AutopilotConfig;
  /** Removes a server from the raft configuration, resolving once the change committed. */
  removePeer(id: string): Promise<void>;
}

interface LeaderDuties {
  locks: LockTimers;
  autopilot: Autopilot;
  stop(): void;
}

export class Leadership {
  private duties: LeaderDuties | undefined;

  constructor(private readonly host: LeadershipHost) {}

  /** Autopilot while this server leads. */
  get autopilot(): Autopilot | undefined {
    return this.duties?.autopilot;
  }

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
    const h = this.host;
    const autopilot = new Autopilot({
      log: h.log,
      stats: h.stats,
      tickMs: h.tickMs,
      status: () => (h.driver()?.isLeader ? h.node()?.status() : undefined),
      config: () => h.config(),
      settings: () => h.autopilotSettings(),
      promote: (id) => {
        const node = h.node();
        if (!node || !h.driver()?.isLeader) throw new Error("not the leader");
        node.proposeConfChange({ type: "promote", id });
        h.driver()?.kick();
      },
      remove: (id) => h.removePeer(id),
    });
    this.duties = {
      locks,
      autopilot,
      stop: () => {
        locks.stop();
        autopilot.stop();
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
}
