// Watch sets that wake blocking queries: one shared entry per watched key (or
// whole table); a waiter that gives up (AbortSignal) removes itself, and an
// entry with no waiters left is dropped, so memory tracks live waiters only.
import type { TableName } from "./tables.ts";

type Waker = () => void;

export class WatchSet {
  /** "table" for a table watch, "table\0key" for a key watch. */
  private readonly entries = new Map<string, Set<Waker>>();
  private closed = false;

  /**
   * Resolves on the next change to `key` in `table` (any change to the table when
   * `key` is undefined), when `signal` aborts, or when the store is abandoned.
   * The caller re-reads the state to learn which.
   */
  wait(table: TableName, key?: string, signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted) return Promise.resolve();
    const id = key === undefined ? table : `${table}\0${key}`;
    return new Promise<void>((resolve) => {
      let set = this.entries.get(id);
      if (set === undefined) {
        set = new Set();
        this.entries.set(id, set);
      }
      const waiters = set;
      const onAbort = (): void => {
        waiters.delete(wake);
        if (waiters.size === 0 && this.entries.get(id) === waiters) this.entries.delete(id);
        resolve();
      };
      const wake: Waker = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      waiters.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Wake the waiters on `key` and on the whole table. */
  notify(table: TableName, key: string): void {
    this.fire(`${table}\0${key}`);
    this.fire(table);
  }

  /** Wake every waiter on the table (and its keys) — e.g. a change that touches many rows. */
  notifyTable(table: TableName): void {
    const prefix = `${table}\0`;
    for (const id of [...this.entries.keys()]) {
      if (id === table || id.startsWith(prefix)) this.fire(id);
    }
  }

  /** Wake everybody and resolve all later waits at once: the store has been replaced (restore). */
  close(): void {
    this.closed = true;
    for (const id of [...this.entries.keys()]) this.fire(id);
  }

  /** Number of watched keys and of waiters; for tests and metrics. */
  stats(): { keys: number; waiters: number } {
    let waiters = 0;
    for (const s of this.entries.values()) waiters += s.size;
    return { keys: this.entries.size, waiters };
  }

  private fire(id: string): void {
    const set = this.entries.get(id);
    if (set === undefined) return;
    this.entries.delete(id);
    for (const wake of set) wake();
  }
}
