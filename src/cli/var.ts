// `node var get|put|list|purge`: variables over the HTTP API (`var lock` lives in var_lock.ts).
import { deleteVar, getVar, listAllVars, putVar, type Variable, type VariableMeta } from "../api/vars.ts";
import { bool, CliError, int } from "./command.ts";
import { simpleCommand } from "./simple_command.ts";
import { formatKv, formatTable } from "./table.ts";

const PATH_RE = /^[a-zA-Z0-9\-_~/]{1,128}$/;
/** Items are at most 64 KiB encoded on the server; a value read from a file or stdin is capped at that. */
const MAX_ITEM_INPUT_BYTES = 64 << 10;

/** The server checks paths too; checking here gives the message before any request goes out. */
export function checkVarPath(p: string | undefined, doing: string): string {
  if (p === undefined || p === "") throw new CliError(`Error ${doing}: missing variable path`);
  if (!PATH_RE.test(p) || p.startsWith("/") || p.endsWith("/") || p.includes("//")) {
    throw new CliError(
      `Error ${doing}: invalid variable path "${p}": 1-128 characters of a-z A-Z 0-9 - _ ~ /, with no leading, trailing or doubled /`,
    );
  }
  return p;
}

const time = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

export function formatVar(v: Variable): string {
  const pairs: [string, string][] = [
    ["Path", v.Path],
    ["Create Index", String(v.CreateIndex)],
    ["Modify Index", String(v.ModifyIndex)],
    ["Create Time", time(v.CreateTime)],
    ["Modify Time", time(v.ModifyTime)],
  ];
  if (v.Lock) pairs.push(["Lock", `held (TTL ${v.Lock.TTL} ms, lock delay ${v.Lock.LockDelay} ms)`]);
  const keys = Object.keys(v.Items ?? {}).sort();
  const items = keys.length ? formatKv(keys.map((k) => [k, v.Items[k] ?? ""])) : "(none)";
  return `${formatKv(pairs)}\n\nItems\n${items}`;
}

const jsonFlag = { name: "json", kind: "bool" as const, help: "Print JSON instead of a table." };

export const varGetCommand = simpleCommand({
  path: ["var", "get"],
  synopsis: "Read a variable",
  usage: "[options] PATH",
  doing: "reading the variable",
  flags: [jsonFlag, { name: "stale", kind: "bool", help: "Let any server answer from its own state." }],
  args: { exactly: 1, what: "PATH" },
  check: (f) => checkVarPath(f.args[0], "reading the variable"),
  async run(f, path, client) {
    const { variable } = await getVar(await client(), path, { stale: bool(f, "stale") });
    if (!variable) throw new CliError(`Error reading the variable: variable "${path}" not found`);
    return bool(f, "json") ? JSON.stringify(variable, null, 2) : formatVar(variable);
  },
});

async function itemValue(key: string, raw: string, readStdin: () => Promise<string>): Promise<string> {
  if (raw === "-") return readStdin();
  if (raw.startsWith("@")) {
    const file = Bun.file(raw.slice(1));
    if (!(await file.exists())) throw new CliError(`Error writing the variable: item ${key}: no such file: ${raw.slice(1)}`);
    if (file.size > MAX_ITEM_INPUT_BYTES)
      throw new CliError(`Error writing the variable: item ${key}: ${raw.slice(1)} is larger than ${MAX_ITEM_INPUT_BYTES} bytes`);
    return file.text();
  }
  return raw;
}

async function readStdinBounded(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of Bun.stdin.stream()) {
    total += chunk.byteLength;
    if (total > MAX_ITEM_INPUT_BYTES) throw new CliError(`Error writing the variable: stdin is larger than ${MAX_ITEM_INPUT_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function parseItems(args: string[], readStdin: () => Promise<string> = readStdinBounded): Promise<Record<string, string>> {
  const items: Record<string, string> = Object.create(null) as Record<string, string>;
  let stdinUsed = false;
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new CliError(`Error writing the variable: invalid item "${a}": expected key=value (or key=@file, key=-)`);
    const key = a.slice(0, eq);
    if (Object.hasOwn(items, key)) throw new CliError(`Error writing the variable: item "${key}" given twice`);
    const raw = a.slice(eq + 1);
    if (raw === "-") {
      if (stdinUsed) throw new CliError("Error writing the variable: only one item can read stdin");
      stdinUsed = true;
    }
    items[key] = await itemValue(key, raw, readStdin);
  }
  return { ...items };
}

export const varPutCommand = simpleCommand({
  path: ["var", "put"],
  synopsis: "Create or update a variable",
  usage: "[options] PATH key=value [key=@file] [key=-] ...",
  doing: "writing the variable",
  flags: [
    { name: "cas", kind: "int", arg: "INDEX", help: "Write only if the variable's ModifyIndex is INDEX; 0 means create only." },
    jsonFlag,
  ],
  async check(f) {
    const path = checkVarPath(f.args[0], "writing the variable");
    const itemArgs = f.args.slice(1);
    if (itemArgs.length === 0) throw new CliError("Error writing the variable: give at least one key=value item");
    const cas = int(f, "cas");
    if (cas !== undefined && cas < 0) throw new CliError("Error writing the variable: -cas must not be negative");
    return { path, cas, items: await parseItems(itemArgs) };
  },
  async run(f, { path, cas, items }, client) {
    const v = await putVar(await client(), path, items, { cas });
    return bool(f, "json") ? JSON.stringify(v, null, 2) : `Wrote variable "${v.Path}" (modify index ${v.ModifyIndex})`;
  },
});

export function formatVarList(vars: VariableMeta[]): string {
  if (vars.length === 0) return "No variables found";
  return formatTable([
    ["Path", "Modify Index", "Modify Time", "Locked"],
    ...vars.map((v) => [v.Path, String(v.ModifyIndex), time(v.ModifyTime), v.Lock ? "yes" : "no"]),
  ]);
}

export const varListCommand = simpleCommand({
  path: ["var", "list"],
  synopsis: "List variables (all pages)",
  usage: "[options] [PREFIX]",
  doing: "listing variables",
  flags: [
    jsonFlag,
    { name: "per-page", kind: "int", arg: "N", default: 1000, help: "Variables asked for per request (1-1000); every page is fetched." },
    { name: "stale", kind: "bool", help: "Let any server answer from its own state." },
  ],
  args: { atMost: 1, what: "PREFIX" },
  check(f) {
    const perPage = int(f, "per-page") ?? 1000;
    if (perPage < 1 || perPage > 1000) throw new CliError("Error listing variables: -per-page must be between 1 and 1000");
    return perPage;
  },
  async run(f, perPage, client) {
    const vars = await listAllVars(await client(), f.args[0] ?? "", { perPage }, { stale: bool(f, "stale") });
    return bool(f, "json") ? JSON.stringify(vars, null, 2) : formatVarList(vars);
  },
});

export const varPurgeCommand = simpleCommand({
  path: ["var", "purge"],
  synopsis: "Delete a variable",
  usage: "[options] PATH",
  doing: "purging the variable",
  flags: [{ name: "cas", kind: "int", arg: "INDEX", help: "Delete only if the variable's ModifyIndex is INDEX." }],
  args: { exactly: 1, what: "PATH" },
  check(f) {
    const path = checkVarPath(f.args[0], "purging the variable");
    const cas = int(f, "cas");
    if (cas !== undefined && cas < 0) throw new CliError("Error purging the variable: -cas must not be negative");
    return { path, cas };
  },
  async run(_, { path, cas }, client) {
    await deleteVar(await client(), path, { cas });
    return `Successfully purged variable "${path}"`;
  },
});
