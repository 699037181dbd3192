// Clients of the nemesis: each runs reads, writes and CAS on a few hot keys through random servers,
// one operation at a time, and records every operation in the history with its outcome:
// 2xx ok; 409 on CAS and other 4xx fail (no effect); 5xx, timeouts and dropped connections info.
import type { ClusterServer } from "../cluster/harness.ts";
import type { History, Operation } from "./history.ts";
import type { SeededRandom } from "./seeded_random.ts";

const REQUEST_TIMEOUT_MS = 3000;

export const VAR_PREFIX = "nemesis/";

interface VarBody {
  Items?: Record<string, string>;
  ModifyIndex?: number;
}

/** One HTTP call's outcome as the history sees it. */
export type CallOutcome = { status: number; body: VarBody | undefined; text: string } | { error: string };

export async function call(
  server: ClusterServer,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<CallOutcome> {
  try {
    const init: RequestInit = { method, signal: AbortSignal.timeout(timeoutMs) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    const r = await fetch(`${server.url}${path}`, init);
    const text = await r.text();
    let parsed: VarBody | undefined;
    try {
      parsed = JSON.parse(text) as VarBody;
    } catch {
      parsed = undefined;
    }
    return { status: r.status, body: parsed, text };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Reads `key` through `server` into the history; returns what was seen (for a later CAS). */
export async function recordedRead(
  h: History,
  process: number,
  server: ClusterServer,
  key: string,
  stale = false,
): Promise<{ value: string | null; index: number } | undefined> {
  const op = h.invoke(process, key, { kind: "read" });
  const r = await call(server, "GET", `/v1/var/${VAR_PREFIX}${key}${stale ? "?stale" : ""}`);
  if ("error" in r) return void h.complete(op, "info", undefined, `${server.name}: ${r.error}`);
  if (r.status === 404 && r.text.includes("not found")) {
    h.complete(op, "ok", null, server.name);
    return { value: null, index: 0 };
  }
  if (r.status === 200 && r.body?.Items && typeof r.body.ModifyIndex === "number") {
    const v = r.body.Items.v ?? null;
    h.complete(op, "ok", v, `${server.name} @${r.body.ModifyIndex}`);
    return { value: v, index: r.body.ModifyIndex };
  }
  h.complete(op, r.status >= 400 && r.status < 500 ? "fail" : "info", undefined, `${server.name}: ${r.status} ${r.text.slice(0, 120)}`);
  return undefined;
}

/** Writes (or CAS-writes) `value` to `key` through `server` into the history. */
export async function recordedWrite(
  h: History,
  process: number,
  server: ClusterServer,
  key: string,
  value: string,
  cas?: { value: string | null; index: number },
): Promise<Operation> {
  const op = h.invoke(process, key, cas ? { kind: "cas", expected: cas.value, expectedIndex: cas.index, value } : { kind: "write", value });
  const q = cas ? `?cas=${cas.index}` : "";
  const r = await call(server, "PUT", `/v1/var/${VAR_PREFIX}${key}${q}`, { Items: { v: value } });
  if ("error" in r) h.complete(op, "info", undefined, `${server.name}: ${r.error}`);
  else if (r.status === 200) h.complete(op, "ok", undefined, `${server.name} @${r.body?.ModifyIndex}`);
  else if (r.status >= 400 && r.status < 500) h.complete(op, "fail", undefined, `${server.name}: ${r.status} ${r.text.slice(0, 120)}`);
  else h.complete(op, "info", undefined, `${server.name}: ${r.status} ${r.text.slice(0, 120)}`);
  return op;
}

export class Client {
  private serial = 0;
  private readonly lastRead = new Map<string, { value: string | null; index: number }>();
  ops = 0;

  constructor(
    readonly process: number,
    private readonly h: History,
    private readonly servers: readonly ClusterServer[],
    private readonly keys: readonly string[],
    private readonly rng: SeededRandom,
    /** Read with ?stale (any server answers from its own state): not linearizable, for self-tests. */
    private readonly staleReads = false,
  ) {}

  async run(until: () => boolean): Promise<void> {
    while (!until()) {
      await this.one();
      this.ops++;
      // Pacing keeps histories checkable and leaves CPU for the servers on a 2-core box.
      await Bun.sleep(this.rng.int(2, 25));
    }
  }

  private async one(): Promise<void> {
    const key = this.rng.pick(this.keys);
    const server = this.rng.pick(this.servers);
    const roll = this.rng.next();
    const seen = this.lastRead.get(key);
    if (roll < 0.4 || (roll >= 0.7 && !seen)) {
      const r = await recordedRead(this.h, this.process, server, key, this.staleReads);
      if (r) this.lastRead.set(key, r);
      else this.lastRead.delete(key);
      return;
    }
    const value = `p${this.process}-${this.serial++}`;
    if (roll < 0.7) {
      await recordedWrite(this.h, this.process, server, key, value);
    } else {
      await recordedWrite(this.h, this.process, server, key, value, seen);
    }
    // Whatever happened, our last read is no longer a fresh basis for a CAS.
    this.lastRead.delete(key);
  }
}
