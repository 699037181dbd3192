// `node var lock [-ttl 15s] PATH -- CMD ARGS...`: acquire the variable's lock, run CMD while renewing
// it every TTL/2, release it when CMD exits and exit with CMD's code; kill CMD if the lock is lost.
import { type DeadlineTimer, deadlineTimer } from "../lib/deadline.ts";
import { ApiError, type ApiClient } from "../api/client.ts";
import { lockAcquire, lockRelease, lockRenew } from "../api/vars.ts";
import { parseDuration } from "../lib/duration.ts";
import { clientFromFlags, withClientFlags } from "./client_flags.ts";
import { CliError, str, type Command, type Io } from "./command.ts";
import { checkVarPath } from "./var.ts";

const MIN_TTL_MS = 1_000;
const MAX_TTL_MS = 24 * 3_600_000;
/** After SIGTERM, CMD gets this long to exit before SIGKILL. */
export const KILL_GRACE_MS = 5_000;
/** A renewal that failed for a reason other than a refusal is retried this often (bounded by TTL/4). */
const RETRY_MS = 1_000;

export interface LockRun {
  client: ApiClient;
  path: string;
  ttlMs: number;
  lockDelay?: string;
  cmd: string[];
  io: Io;
  killGraceMs?: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/** Holds the lock while CMD runs; resolves to the exit code the CLI should end with. */
export async function runWithLock(r: LockRun): Promise<number> {
  const { client, path, ttlMs, io } = r;
  let acquired;
  try {
    acquired = await lockAcquire(client, path, { ttl: `${ttlMs}ms`, lockDelay: r.lockDelay });
  } catch (e) {
    throw new CliError(`Error acquiring the lock on "${path}": ${(e as Error).message}`);
  }
  const lockId = acquired.Lock.ID;

  // Signals to the CLI go to CMD; the lock is released once CMD has exited. The handlers are in place
  // before CMD starts: a signal sent as soon as CMD shows life must find them, or the CLI would die of
  // it and leave CMD running with the lock unreleased. One that arrives before CMD exists is passed on
  // once it does.
  let child: ReturnType<typeof Bun.spawn> | undefined;
  let early: NodeJS.Signals | undefined;
  let exited = false;
  const forward = (sig: NodeJS.Signals) => () => {
    if (!child) early = sig;
    else if (!exited) child.kill(sig);
  };
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  let cmd: ReturnType<typeof Bun.spawn>;
  try {
    cmd = child = Bun.spawn(r.cmd, {
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, EDGENODE_LOCK_PATH: path },
    });
  } catch (e) {
    for (const [s, h] of handlers) process.off(s, h);
    await lockRelease(client, path, lockId).catch(() => {});
    throw new CliError(`Error running the command: ${(e as Error).message}`);
  }
  if (early) cmd.kill(early);

  let lost: string | undefined;
  let lastRenew = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let renewing: Promise<void> | undefined;
  let killDeadline: DeadlineTimer | undefined;

  const loseLock = (why: string) => {
    if (lost !== undefined || exited) return;
    lost = why;
    io.err(`Error holding the lock on "${path}": ${why}; stopping the command`);
    cmd.kill("SIGTERM");
    killDeadline = deadlineTimer(r.killGraceMs ?? KILL_GRACE_MS, () => cmd.kill("SIGKILL"));
  };

  const schedule = (ms: number) => {
    if (exited || lost !== undefined) return;
    timer = setTimeout(() => {
      renewing = renew();
    }, ms);
  };

  const renew = async () => {
    try {
      // Never wait longer than what is left of the TTL: past that the lock is gone anyway.
      const left = ttlMs - (performance.now() - lastRenew);
      await lockRenew(client, path, lockId, { timeoutMs: Math.max(100, left) });
      lastRenew = performance.now();
      schedule(ttlMs / 2);
    } catch (e) {
      if (exited) return;
      const refused = e instanceof ApiError && (e.status === 409 || e.status === 404 || e.status === 400);
      if (refused) return loseLock(`the lock was lost (${(e as Error).message})`);
      if (performance.now() - lastRenew >= ttlMs) return loseLock(`could not renew within the TTL (${(e as Error).message})`);
      // Bounded by the TTL (above); each retry is said, so a flapping agent is visible before the lock goes.
      const again = Math.min(RETRY_MS, ttlMs / 4);
      io.err(`Error renewing the lock on "${path}": ${(e as Error).message}; retrying in ${Math.round(again)} ms`);
      schedule(again);
    }
  };
  schedule(ttlMs / 2);

  const code = await cmd.exited;
  exited = true;
  for (const [s, h] of handlers) process.off(s, h);
  if (timer) clearTimeout(timer);
  killDeadline?.cancel();
  await renewing;

  if (lost === undefined) {
    try {
      await lockRelease(client, path, lockId);
    } catch (e) {
      io.err(`Error releasing the lock on "${path}": ${(e as Error).message}`);
      return code === 0 ? 1 : code;
    }
  }
  if (lost !== undefined) return 1;
  if (cmd.signalCode) return 128 + (SIGNALS[cmd.signalCode] ?? 0);
  return code;
}

export const varLockCommand: Command = {
  path: ["var", "lock"],
  synopsis: "Hold a variable's lock while a command runs",
  usage: "[options] PATH -- CMD [ARGS...]",
  doing: "holding the lock",
  flags: withClientFlags([
    { name: "ttl", kind: "string", arg: "DURATION", default: "15s", help: "The lock's TTL; it is renewed every TTL/2." },
    {
      name: "lock-delay",
      kind: "string",
      arg: "DURATION",
      help: "How long nobody may acquire the lock after it expires. Default: the server's (15s).",
    },
  ]),
  async run(f, io) {
    const path = checkVarPath(f.args[0], "holding the lock");
    const rest = f.args.slice(1);
    const cmd = rest[0] === "--" ? rest.slice(1) : rest;
    if (cmd.length === 0) throw new CliError("Error holding the lock: missing the command to run: var lock PATH -- CMD [ARGS...]");
    let ttlMs: number;
    try {
      ttlMs = parseDuration(str(f, "ttl") || "15s");
    } catch (e) {
      throw new CliError(`Error parsing flags: -ttl: ${(e as Error).message}`);
    }
    if (ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS)
      throw new CliError(`Error parsing flags: -ttl must be between 1s and 24h (got ${str(f, "ttl")})`);
    const lockDelay = str(f, "lock-delay");
    if (lockDelay) {
      try {
        parseDuration(lockDelay);
      } catch (e) {
        throw new CliError(`Error parsing flags: -lock-delay: ${(e as Error).message}`);
      }
    }
    const client = await clientFromFlags(f);
    return runWithLock({ client, path, ttlMs: Math.round(ttlMs), lockDelay: lockDelay || undefined, cmd, io });
  },
};
