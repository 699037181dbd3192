// The shape every CLI command has, and the dispatcher that picks one from argv.
// Commands print results to stdout and `Error <doing what>: <detail>` to stderr.
import { EdgeError } from "../lib/errors.ts";
import { FlagError, flagsHelp, parseFlags, type FlagSpec, type ParsedFlags } from "./flags.ts";

export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** Whether stderr is a terminal (progress lines are shown only then). */
  errIsTTY: boolean;
  env: Record<string, string | undefined>;
}

export interface Command {
  /** Words that select it, e.g. ["operator", "snapshot", "save"]. */
  path: string[];
  synopsis: string;
  usage: string;
  flags: FlagSpec[];
  /** What it is doing, for `Error <doing>: ...` lines. */
  doing: string;
  run(f: ParsedFlags, io: Io): Promise<number>;
}

/** An error whose message is already the whole user-facing text. */
export class CliError extends EdgeError {
  constructor(message: string) {
    super("BAD_REQUEST", message);
    this.name = "CliError";
  }
}

export const processIo = (): Io => ({
  out: (s) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith("\n") ? s : `${s}\n`),
  errIsTTY: Boolean(process.stderr.isTTY),
  env: process.env,
});

export function commandHelp(c: Command): string {
  const flags = c.flags.length ? `\n\nFlags:\n\n${flagsHelp(c.flags)}` : "";
  return `Usage: node ${c.path.join(" ")} ${c.usage}\n\n  ${c.synopsis}${flags}\n`;
}

function groupHelp(commands: Command[], prefix: string[]): string {
  const subs = commands.filter((c) => prefix.every((w, i) => c.path[i] === w));
  const lines = subs.map((c) => `    ${c.path.join(" ").padEnd(36)} ${c.synopsis}`);
  const head = prefix.length ? `node ${prefix.join(" ")} <subcommand> [options] [args]` : "node <command> [subcommand] [options] [args]";
  return `Usage: ${head}\n\nAvailable commands:\n${lines.join("\n")}\n`;
}

export async function dispatch(commands: Command[], argv: string[], io: Io): Promise<number> {
  // Longest command path that matches the leading words of argv.
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= argv.length && c.path.every((w, i) => argv[i] === w)) {
      if (!best || c.path.length > best.path.length) best = c;
    }
  }
  if (!best) {
    const words = argv.filter((a) => !a.startsWith("-"));
    const first = argv[0];
    if (first === undefined || first === "-help" || first === "--help" || first === "-h" || first === "help") {
      io.out(groupHelp(commands, []));
      return first === undefined ? 1 : 0;
    }
    // A known group with a missing or unknown subcommand.
    const prefix: string[] = [];
    for (const w of words) {
      if (commands.some((c) => [...prefix, w].every((p, i) => c.path[i] === p))) prefix.push(w);
      else break;
    }
    if (prefix.length > 0) {
      const asksHelp = argv.some((a) => /^--?(help|h)$/.test(a));
      if (asksHelp && words.length === prefix.length) {
        io.out(groupHelp(commands, prefix));
        return 0;
      }
      const unknown = words[prefix.length];
      io.err(
        unknown ? `Error: unknown command "${prefix.join(" ")} ${unknown}"\n\n${groupHelp(commands, prefix)}` : groupHelp(commands, prefix),
      );
      return 1;
    }
    io.err(`Error: unknown command "${first}"; run "node -help" for the list of commands`);
    return 1;
  }
  const rest = argv.slice(best.path.length);
  let flags: ParsedFlags;
  try {
    flags = parseFlags(best.flags, rest, io.env);
  } catch (e) {
    if (e instanceof FlagError) {
      io.err(`Error parsing flags: ${e.message}\n\n${commandHelp(best)}`);
      return 1;
    }
    throw e;
  }
  if (flags.help) {
    io.out(commandHelp(best));
    return 0;
  }
  try {
    return await best.run(flags, io);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    io.err(e instanceof CliError ? msg : `Error ${best.doing}: ${msg}`);
    return 1;
  }
}

export function str(f: ParsedFlags, name: string): string {
  const v = f.values.get(name);
  return typeof v === "string" ? v : "";
}
export function bool(f: ParsedFlags, name: string): boolean {
  return f.values.get(name) === true;
}
export function int(f: ParsedFlags, name: string): number | undefined {
  const v = f.values.get(name);
  return typeof v === "number" ? v : undefined;
}
export function strs(f: ParsedFlags, name: string): string[] {
  const v = f.values.get(name);
  return Array.isArray(v) ? v : [];
}
