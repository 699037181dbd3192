// Go-style command-line flags: `-flag value`, `-flag=value`, `--flag`, booleans as `-flag` or
// `-flag=false`, parsing stops at the first argument that is not a flag or at `--`.
import { EdgeError } from "../lib/errors.ts";

export class FlagError extends EdgeError {
  constructor(message: string) {
    super("BAD_REQUEST", message);
    this.name = "FlagError";
  }
}

export type FlagKind = "string" | "bool" | "int" | "strings";

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  help: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  default?: string | boolean | number | string[];
  /** Placeholder shown in help, e.g. PATH. */
  arg?: string;
}

export type FlagValue = string | boolean | number | string[] | undefined;

export interface ParsedFlags {
  values: Map<string, FlagValue>;
  /** Which flags were given explicitly (not defaults or env). */
  set: Set<string>;
  args: string[];
  help: boolean;
}

const MAX_ARGS = 4096;

export function parseFlags(specs: FlagSpec[], argv: string[], env: Record<string, string | undefined> = process.env): ParsedFlags {
  if (argv.length > MAX_ARGS) throw new FlagError(`too many arguments (${argv.length} > ${MAX_ARGS})`);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, FlagValue>();
  const set = new Set<string>();
  let help = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (name === "help" || name === "h") {
      help = true;
      continue;
    }
    const spec = byName.get(name);
    if (!spec) throw new FlagError(`flag provided but not defined: -${name}`);
    let raw: string;
    if (spec.kind === "bool") {
      raw = inline ?? "true";
    } else if (inline !== undefined) {
      raw = inline;
    } else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      raw = argv[++i]!;
    }
    const v = convert(spec, raw, `-${name}`);
    if (spec.kind === "strings") {
      const prev = set.has(name) ? ((values.get(name) as string[]) ?? []) : [];
      values.set(name, [...prev, ...(v as string[])]);
    } else {
      values.set(name, v);
    }
    set.add(name);
  }
  for (const spec of specs) {
    if (set.has(spec.name)) continue;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") values.set(spec.name, convert(spec, fromEnv, spec.env!));
    else values.set(spec.name, spec.default);
  }
  return { values, set, args: argv.slice(i), help };
}

function convert(spec: FlagSpec, raw: string, where: string): FlagValue {
  switch (spec.kind) {
    case "string":
      return raw;
    case "strings":
      return [raw];
    case "bool": {
      const r = raw.toLowerCase();
      if (["true", "1", "t", "yes"].includes(r)) return true;
      if (["false", "0", "f", "no"].includes(r)) return false;
      throw new FlagError(`invalid boolean value "${raw}" for ${where}`);
    }
    case "int": {
      if (!/^-?\d+$/.test(raw)) throw new FlagError(`invalid integer value "${raw}" for ${where}`);
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw new FlagError(`integer value "${raw}" for ${where} is out of range`);
      return n;
    }
  }
}

export function flagsHelp(specs: FlagSpec[]): string {
  return specs
    .map((s) => {
      const arg = s.kind === "bool" ? "" : ` <${s.arg ?? s.kind}>`;
      const env = s.env ? ` (env ${s.env})` : "";
      const def = s.default !== undefined && s.default !== "" && s.default !== false ? ` Default: ${String(s.default)}.` : "";
      return `  -${s.name}${arg}\n    ${s.help}${def}${env}`;
    })
    .join("\n\n");
}
