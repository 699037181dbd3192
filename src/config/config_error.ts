// The one error for bad configuration input (HCL syntax, schema, file access):
// its message always starts with `file:line:col: ` so an operator can go straight to the spot.
import { EdgeError } from "../lib/errors.ts";

/** Where something was written: a file name and a 1-based line and column (line 0: the file as a whole). */
export interface Loc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export function formatLoc(loc: Loc): string {
  return loc.line > 0 ? `${loc.file}:${loc.line}:${loc.col}` : loc.file;
}

export class ConfigError extends EdgeError {
  /** Position of the first (or only) problem. */
  readonly loc: Loc;
  /** What is wrong, without the position prefix. */
  readonly what: string;
  constructor(loc: Loc, what: string, more: readonly string[] = []) {
    // Further problems (already prefixed with their own positions) follow on their own lines.
    super("CONFIG", [`${formatLoc(loc)}: ${what}`, ...more].join("\n"));
    this.name = "ConfigError";
    this.loc = loc;
    this.what = what;
  }
}
