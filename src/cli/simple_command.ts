// The factory for the commands that are one request (or none) and one printed answer: check the
// positional arguments and flags, build the client from the client flags, print what `run` returns.
// Every check runs before any request goes out, so a mistyped command never reaches the agent.
import type { ApiClient } from "../api/client.ts";
import { clientFromFlags, withClientFlags } from "./client_flags.ts";
import { CliError, type Command } from "./command.ts";
import type { FlagSpec, ParsedFlags } from "./flags.ts";

/** The positional arguments a command takes: none, exactly `n` or at most `n`, described by `what`. */
export type Args = "none" | { exactly: number; what: string } | { atMost: number; what: string };

export interface SimpleCommand<P> {
  path: string[];
  synopsis: string;
  usage: string;
  doing: string;
  /** The command's own flags; the client flags follow unless the command is `local`. */
  flags?: FlagSpec[];
  /** Talks to no agent: takes no client flags. */
  local?: boolean;
  /** Left out when `check` judges the arguments itself. */
  args?: Args;
  /** Checks the arguments and flags before any request; what it returns is handed to `run`. */
  check?: (f: ParsedFlags) => P | Promise<P>;
  /** The text to print on success; `client()` builds the ApiClient from the client flags. */
  run(f: ParsedFlags, checked: P, client: () => Promise<ApiClient>): Promise<string>;
}

function checkArgs(args: string[], a: Args | undefined, doing: string): void {
  if (a === undefined) return;
  if (a === "none") {
    if (args.length > 0) throw new CliError(`Error ${doing}: unexpected arguments: ${args.join(" ")}`);
  } else if ("exactly" in a) {
    const n = a.exactly;
    if (args.length !== n)
      throw new CliError(`Error ${doing}: expected ${n === 1 ? "exactly one argument" : `${n} arguments`}, ${a.what} (got ${args.length})`);
  } else if (args.length > a.atMost) {
    throw new CliError(
      `Error ${doing}: expected at most ${a.atMost === 1 ? "one argument" : `${a.atMost} arguments`}, ${a.what} (got ${args.length})`,
    );
  }
}

export function simpleCommand<P = undefined>(s: SimpleCommand<P>): Command {
  const own = s.flags ?? [];
  return {
    path: s.path,
    synopsis: s.synopsis,
    usage: s.usage,
    doing: s.doing,
    flags: s.local ? own : withClientFlags(own),
    async run(f, io) {
      checkArgs(f.args, s.args, s.doing);
      const checked = s.check ? await s.check(f) : (undefined as P);
      io.out(await s.run(f, checked, () => clientFromFlags(f)));
      return 0;
    },
  };
}
