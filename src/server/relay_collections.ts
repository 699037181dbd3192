// The forced collections of a server relaying a restore upload (restore_relay.ts): full ones within a
// share of the relay's time in CPU, eden ones otherwise, counted for the relay's log line.
import { edenGC } from "bun:jsc";

/**
 * A relaying server's full collections stay within this share of the relay's time so far, the next
 * one counted at the last one's cost. A full collection walks the whole heap: on a server holding a
 * large state each one costs more than the upload's garbage is worth, and collecting at every 32 MiB of
 * growth made the relay's CPU grow with the state's size, not the file's (test/bench/RESULTS.md,
 * restore_vs_hraft). Every other check runs an eden collection, whose cost is what was allocated since
 * the last one, not the heap: alone it does not hold the bound on a small heap (where a full collection
 * is cheap and allowed), past the budget on a large one it does.
 */
export const RELAY_GC_CPU_SHARE = 0.05;

/** The process's CPU time in ms, every thread counted (the collector marks on helper threads). */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The relay's forced collections and their CPU: full ones within RELAY_GC_CPU_SHARE of the relay's time, eden ones otherwise. */
export class RelayCollections {
  count = 0;
  /** Full collections the budget held back. */
  declined = 0;
  cpuMs = 0;
  eden = 0;
  edenCpuMs = 0;
  private lastMs = 0;

  constructor(
    private readonly since: number,
    private readonly gc: { full(): void; eden(): void } = { full: () => Bun.gc(true), eden: () => void edenGC() },
    private readonly cpuNow: () => number = processCpuMs,
  ) {}

  /** Whether one more full collection, at the last one's cost, keeps the total within the share of the time since `since`. */
  affordable(now: number): boolean {
    const ok = this.cpuMs + this.lastMs <= RELAY_GC_CPU_SHARE * (now - this.since);
    if (!ok) this.declined++;
    return ok;
  }

  collect(): void {
    const before = this.cpuNow();
    this.gc.full();
    this.lastMs = Math.max(0, this.cpuNow() - before);
    this.cpuMs += this.lastMs;
    this.count++;
  }

  young(): void {
    const before = this.cpuNow();
    this.gc.eden();
    this.edenCpuMs += Math.max(0, this.cpuNow() - before);
    this.eden++;
  }
}
