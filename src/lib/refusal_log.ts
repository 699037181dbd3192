// Counts refused connections and requests by reason, and logs them at a bounded rate: at most one line
// per interval, carrying how many were refused since the last line, so a flood cannot flood the log.
import { REFUSAL_LOG_INTERVAL_MS } from "./limits.ts";

export type RefusalLogFn = (level: string, msg: string) => void;

export class RefusalLog {
  private readonly what: string;
  private readonly log: RefusalLogFn | undefined;
  private readonly intervalMs: number;
  private readonly onRefused: ((reason: string) => void) | undefined;
  private readonly totals = new Map<string, number>();
  private pending = new Map<string, number>();
  private lastAddr = "";
  private lastLogAt = -Infinity;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** `what` names the port in log lines ("rpc", "http"); `onRefused` feeds a metric. */
  constructor(what: string, log: RefusalLogFn | undefined, onRefused?: (reason: string) => void, intervalMs = REFUSAL_LOG_INTERVAL_MS) {
    this.what = what;
    this.log = log;
    this.onRefused = onRefused;
    this.intervalMs = intervalMs;
  }

  refuse(reason: string, addr: string): void {
    this.totals.set(reason, (this.totals.get(reason) ?? 0) + 1);
    this.pending.set(reason, (this.pending.get(reason) ?? 0) + 1);
    this.lastAddr = addr;
    this.onRefused?.(reason);
    const now = performance.now();
    if (now - this.lastLogAt >= this.intervalMs) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.lastLogAt + this.intervalMs - now);
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Refusals by reason since the start. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const parts = [...this.pending].map(([r, n]) => `${n} ${r}`).join(", ");
    this.log?.(
      "warn",
      `${this.what}: refused ${parts} (latest from ${this.lastAddr}); at most one such line per ${this.intervalMs / 1000} s`,
    );
    this.pending = new Map();
    this.lastLogAt = performance.now();
  }
}
