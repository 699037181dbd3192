// Leveled logging to stderr in hclog's shapes, so operators of Nomad/Consul read it at a glance:
//   2026-01-02T15:04:05.000Z [INFO]  agent: started: http=127.0.0.1:4646 rpc=127.0.0.1:4647
// or, with json, one object per line: {"@level":"info","@message":"started","@module":"agent",...}.

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] as const;
export type Level = (typeof LEVELS)[number];

/** Key/value context of one line. Errors log their message; objects are JSON. */
export type Fields = Readonly<Record<string, unknown>>;

export interface Logger {
  trace(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger for a subsystem: its name is appended with "." (agent -> agent.http). Shares level and output. */
  named(sub: string): Logger;
  /** Change the level of this logger and every logger named from the same root (SIGHUP reload). */
  setLevel(level: Level): void;
  readonly level: Level;
  isEnabled(level: Level): boolean;
}

export interface LoggerOptions {
  /** Default "INFO". */
  level?: Level;
  /** JSON lines instead of text lines; default false. */
  json?: boolean;
  /** Name of the root logger; default none. */
  name?: string;
  /** Where finished lines (each ending in "\n") go; default stderr. */
  write?: (line: string) => void;
  /** For tests: the clock. */
  now?: () => Date;
}

/** A value longer than this is cut, so one runaway field cannot flood the log. */
export const MAX_VALUE_CHARS = 4096;

const RANK: Record<Level, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

export function isLevel(s: string): s is Level {
  return Object.hasOwn(RANK, s);
}

interface Shared {
  rank: number;
  level: Level;
  readonly json: boolean;
  readonly write: (line: string) => void;
  readonly now: () => Date;
}

function clip(s: string): string {
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS)}…(${s.length - MAX_VALUE_CHARS} more)` : s;
}

/** A field value as JSON-able data. */
function plain(v: unknown): unknown {
  if (v instanceof Error) return clip(v.message);
  if (typeof v === "string") return clip(v);
  if (typeof v === "bigint") return v.toString();
  if (v === undefined || typeof v === "function" || typeof v === "symbol") return String(v);
  if (v !== null && typeof v === "object") {
    try {
      const s = JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x instanceof Error ? x.message : x));
      return s.length > MAX_VALUE_CHARS ? clip(s) : v;
    } catch {
      return "<unserializable>"; // cycles
    }
  }
  return v;
}

/** A field value as hclog's text format writes it: bare when safe, quoted otherwise. */
function textValue(v: unknown): string {
  const p = plain(v);
  if (p === null) return "<nil>";
  // Quote what would make the line ambiguous to read or to split: spaces, quotes, "=", control
  // characters. JSON (objects, lists) delimits itself, so only whitespace inside it needs quoting.
  if (typeof p === "object") {
    const j = JSON.stringify(p);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a value holding control characters is quoted, so they are what to find
    return /[\s\x00-\x1f\x7f]/.test(j) ? JSON.stringify(j) : j;
  }
  const s = typeof p === "string" ? p : String(p);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a value holding control characters is quoted, so they are what to find
  return s === "" || /[\s"=\\\x00-\x1f\x7f]/.test(s) ? JSON.stringify(s) : s;
}

class LeveledLogger implements Logger {
  constructor(
    private readonly shared: Shared,
    private readonly name: string,
  ) {}

  get level(): Level {
    return this.shared.level;
  }

  isEnabled(level: Level): boolean {
    return RANK[level] >= this.shared.rank;
  }

  setLevel(level: Level): void {
    if (!isLevel(level)) throw new Error(`unknown log level "${String(level)}": expected one of ${LEVELS.join(", ")}`);
    this.shared.level = level;
    this.shared.rank = RANK[level];
  }

  named(sub: string): Logger {
    return new LeveledLogger(this.shared, this.name === "" ? sub : `${this.name}.${sub}`);
  }

  trace(msg: string, fields?: Fields): void {
    this.log("TRACE", msg, fields);
  }
  debug(msg: string, fields?: Fields): void {
    this.log("DEBUG", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log("INFO", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log("WARN", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.log("ERROR", msg, fields);
  }

  private log(level: Level, msg: string, fields: Fields | undefined): void {
    if (RANK[level] < this.shared.rank) return;
    const ts = this.shared.now().toISOString();
    let line: string;
    if (this.shared.json) {
      const o: Record<string, unknown> = { "@level": level.toLowerCase(), "@message": clip(msg), "@module": this.name, "@timestamp": ts };
      if (this.name === "") delete o["@module"];
      // Fields cannot overwrite the "@" keys that tools parse.
      for (const [k, v] of Object.entries(fields ?? {})) if (!k.startsWith("@")) o[k] = plain(v);
      line = JSON.stringify(o);
    } else {
      let rest = this.name === "" ? clip(msg) : `${this.name}: ${clip(msg)}`;
      const entries = Object.entries(fields ?? {});
      if (entries.length > 0) rest += `: ${entries.map(([k, v]) => `${k}=${textValue(v)}`).join(" ")}`;
      // One event, one line: a newline inside the message would forge a second log line.
      line = `${ts} ${`[${level}]`.padEnd(7)} ${rest.replace(/\r?\n/g, "\\n")}`;
    }
    try {
      this.shared.write(`${line}\n`);
    } catch {
      // A closed stderr must not take the server down.
    }
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "INFO";
  if (!isLevel(level)) throw new Error(`unknown log level "${String(level)}": expected one of ${LEVELS.join(", ")}`);
  const shared: Shared = {
    level,
    rank: RANK[level],
    json: opts.json ?? false,
    write: opts.write ?? ((line) => void process.stderr.write(line)),
    now: opts.now ?? (() => new Date()),
  };
  return new LeveledLogger(shared, opts.name ?? "");
}

/** A logger that writes nothing, for tests and tools that do not log. */
export function silentLogger(): Logger {
  return createLogger({ level: "ERROR", write: () => {} });
}
