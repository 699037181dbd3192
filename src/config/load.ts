// Loading the agent configuration: files and directories of *.hcl read in order, merged, checked
// against the schema, and completed with what depends on the machine (hostname, advertise IP).
// Every problem is a ConfigError at the `file:line:col` where the offending key was written.
import { readdir, readFile, stat } from "node:fs/promises";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import type { z } from "zod";
import { assert } from "../lib/assert.ts";
import { defaultAdvertiseHost, withPort, type InterfaceTable } from "./advertise.ts";
import { ConfigError, formatLoc, type Loc } from "./config_error.ts";
import { errnoOf } from "../lib/errors.ts";
import { HCL_LIMITS, parseHcl } from "./hcl.ts";
import { configSchema, type Config, type RawConfig } from "./schema.ts";
import { describeNode, fileTree, formatPath, mergeTrees, nodeAt, treeToPlain, type MapNode } from "./tree.ts";

export type { Config } from "./schema.ts";

export interface LoadOptions {
  /** `agent -dev`: loopback, one self-bootstrapping server, ACLs off; files may still override. */
  dev?: boolean;
  /** Overrides `data_dir` (the -dev temporary directory). Required in dev mode unless a file sets data_dir. */
  dataDir?: string;
  /** For tests: the machine facts defaults are drawn from. */
  hostname?: () => string;
  interfaces?: () => InterfaceTable;
}

/** A file's name (for messages) and its text. */
export interface ConfigSource {
  file: string;
  text: string;
}

/** Bounds on the files one agent reads. */
export const LOAD_LIMITS = { maxFiles: 256, maxIssues: 10 } as const;

/** What `agent -dev` sets before any file is applied; written as HCL so errors can point at it. */
const DEV_HCL = `
bind_addr = "127.0.0.1"
ports     { http = 4646  rpc = 4647 }
advertise { http = "127.0.0.1"  rpc = "127.0.0.1" }
server    { enabled = true  bootstrap_expect = 1 }
acl       { enabled = false }
`;

const wholeFile = (file: string): Loc => ({ file, line: 0, col: 0 });

function errno(e: unknown): string {
  const code = errnoOf(e);
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES") return "permission denied";
  return e instanceof Error ? e.message : String(e);
}

/** The *.hcl files a path stands for: the file itself, or a directory's *.hcl files sorted by name. */
async function expandPath(path: string): Promise<string[]> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new ConfigError(wholeFile(path), `cannot read configuration: ${errno(e)}`);
  }
  if (!st.isDirectory()) return [path];
  let names: string[];
  try {
    names = await readdir(path);
  } catch (e) {
    throw new ConfigError(wholeFile(path), `cannot read configuration directory: ${errno(e)}`);
  }
  const files: string[] = [];
  // Code-unit order, not locale order, so the merge order is the same on every machine.
  for (const n of names.filter((n) => n.endsWith(".hcl")).sort()) {
    const full = join(path, n);
    const s = await stat(full).catch(() => undefined);
    if (s?.isFile()) files.push(full);
  }
  return files;
}

async function readSource(file: string): Promise<ConfigSource> {
  try {
    const st = await stat(file);
    // Refuse before reading: a config path pointing at a huge file must not be loaded into memory.
    if (st.size > HCL_LIMITS.maxBytes) {
      throw new ConfigError(wholeFile(file), `file is ${st.size} bytes; the limit is ${HCL_LIMITS.maxBytes}`);
    }
    return { file, text: await readFile(file, "utf8") };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(wholeFile(file), `cannot read configuration: ${errno(e)}`);
  }
}

/** Read, merge and validate configuration files and directories, in the order given. */
export async function loadConfig(paths: readonly string[], opts: LoadOptions = {}): Promise<Config> {
  const files: string[] = [];
  for (const p of paths) files.push(...(await expandPath(p)));
  if (files.length > LOAD_LIMITS.maxFiles) {
    throw new ConfigError(
      wholeFile(files[LOAD_LIMITS.maxFiles]!),
      `too many configuration files: ${files.length}; the limit is ${LOAD_LIMITS.maxFiles}`,
    );
  }
  const sources: ConfigSource[] = [];
  for (const f of files) sources.push(await readSource(f));
  const { config, root } = parseSources(sources, opts);
  await checkTlsFiles(config, root);
  return config;
}

/** Largest TLS certificate, key or CA file read. */
const MAX_TLS_FILE_BYTES = 1024 * 1024;

/**
 * The TLS files a configuration uses must be readable PEM files; a problem points at the key that
 * names the file, as every other configuration error does (SPEC §2).
 */
async function checkTlsFiles(c: Config, root: MapNode): Promise<void> {
  if (!c.tls.http && !c.tls.rpc) return;
  const found: { loc: Loc; text: string }[] = [];
  for (const key of ["cert_file", "key_file", "ca_file"] as const) {
    const path = c.tls[key];
    if (path === "") continue;
    const problem = await tlsFileProblem(path);
    if (problem !== undefined) found.push({ loc: nodeAt(root, ["tls", key]).node.loc, text: `tls.${key}: ${problem}` });
  }
  found.sort((a, b) => a.loc.line - b.loc.line || a.loc.col - b.loc.col);
  const [first, ...rest] = found;
  if (first)
    throw new ConfigError(
      first.loc,
      first.text,
      rest.map((f) => `${formatLoc(f.loc)}: ${f.text}`),
    );
}

async function tlsFileProblem(path: string): Promise<string | undefined> {
  const name = JSON.stringify(path);
  try {
    const st = await stat(path);
    if (!st.isFile()) return `${name} is not a file`;
    if (st.size > MAX_TLS_FILE_BYTES) return `${name} is ${st.size} bytes; the limit is ${MAX_TLS_FILE_BYTES}`;
    const text = await readFile(path, "utf8");
    if (!text.includes("-----BEGIN ")) return `${name} holds no PEM block (no "-----BEGIN " line)`;
    return undefined;
  } catch (e) {
    return `cannot read ${name}: ${errno(e)}`;
  }
}

/** The configuration of `agent -dev`, with the caller's temporary data directory. */
export function devConfig(dataDir: string, opts: Omit<LoadOptions, "dev" | "dataDir"> = {}): Config {
  return configFromSources([], { ...opts, dev: true, dataDir });
}

/** Parse, merge (later sources override earlier ones) and validate already-read sources. */
export function configFromSources(sources: readonly ConfigSource[], opts: LoadOptions = {}): Config {
  return parseSources(sources, opts).config;
}

/** configFromSources, with the merged tree the positions of its keys are found in. */
function parseSources(sources: readonly ConfigSource[], opts: LoadOptions): { config: Config; root: MapNode } {
  const trees: MapNode[] = [];
  if (opts.dev) trees.push(fileTree(parseHcl(DEV_HCL, "-dev")));
  for (const s of sources) trees.push(fileTree(parseHcl(s.text, s.file)));
  const empty: MapNode = {
    kind: "map",
    entries: new Map(),
    origin: "root",
    loc: wholeFile("(no configuration files)"),
    keyLoc: wholeFile("(no configuration files)"),
  };
  const root = trees.reduce((acc, t) => mergeTrees(acc, t), trees[0] ?? empty);

  const parsed = configSchema.safeParse(treeToPlain(root));
  if (!parsed.success)
    throw issuesToError(
      root,
      parsed.error.issues,
      sources.map((s) => s.file),
    );
  const raw = parsed.data;

  const dataDir = opts.dataDir ?? raw.data_dir;
  if (dataDir === undefined) {
    assert(!opts.dev, "dev mode needs a data directory from the caller (LoadOptions.dataDir)");
    throw new ConfigError(root.loc, `data_dir: expected a directory path, but it is not set (it is required unless -dev)`);
  }
  return { config: complete(raw, dataDir, opts), root };
}

/** Fill in the defaults that depend on the machine or on other keys. */
function complete(raw: RawConfig, dataDir: string, opts: LoadOptions): Config {
  const host = defaultAdvertiseHost(raw.bind_addr, (opts.interfaces ?? networkInterfaces)());
  return {
    ...raw,
    name: raw.name ?? nodeName((opts.hostname ?? hostname)()),
    data_dir: dataDir,
    advertise: {
      http: withPort(raw.advertise.http ?? host, raw.ports.http),
      rpc: withPort(raw.advertise.rpc ?? host, raw.ports.rpc),
    },
    snapshot_schedule: { ...raw.snapshot_schedule, path: raw.snapshot_schedule.path ?? join(dataDir, "backups") },
  };
}

/** A hostname made into a valid node name (1..128 of [A-Za-z0-9._-]). */
function nodeName(h: string): string {
  const n = h.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 128);
  return n.length > 0 ? n : "edgenode";
}

type Issue = z.core.$ZodIssue;

/** One line per problem: `file:line:col: key.path: expected … but found …`. */
function issuesToError(root: MapNode, issues: readonly Issue[], fileOrder: readonly string[]): ConfigError {
  const found: { loc: Loc; text: string }[] = [];
  for (const iss of issues) {
    if (iss.code === "unrecognized_keys") {
      for (const key of iss.keys) {
        const path = [...iss.path, key];
        const { node } = nodeAt(root, path);
        found.push({ loc: node.keyLoc, text: `${formatPath(path)}: unknown key${suggest(key, knownKeys(iss.path))}` });
      }
      continue;
    }
    const { node, found: exists } = nodeAt(root, iss.path);
    const path = formatPath(iss.path);
    let what = iss.message;
    if (iss.code === "invalid_key") {
      what = iss.issues[0]?.message ?? what;
      found.push({ loc: node.keyLoc, text: `${path}: ${what}` });
      continue;
    }
    if (what.startsWith("expected ")) what += exists ? ` but found ${describeNode(node)}` : ", but it is not set";
    // A value's own problem points at the value; a missing key points at the block that lacks it.
    found.push({ loc: node.loc, text: `${path === "" ? "" : `${path}: `}${what}` });
  }
  const rank = (l: Loc) => {
    const i = fileOrder.indexOf(l.file);
    return i < 0 ? -1 : i;
  };
  found.sort((a, b) => rank(a.loc) - rank(b.loc) || a.loc.line - b.loc.line || a.loc.col - b.loc.col);
  assert(found.length > 0, "a failed parse has issues");
  const [first, ...rest] = found;
  const more = rest.slice(0, LOAD_LIMITS.maxIssues - 1).map((f) => `${formatLoc(f.loc)}: ${f.text}`);
  if (rest.length > more.length) more.push(`… and ${rest.length - more.length} more`);
  return new ConfigError(first!.loc, first!.text, more);
}

/** The keys the schema allows in the block at `path`, found by walking the zod schema. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  type Def = {
    type: string;
    innerType?: unknown;
    in?: unknown;
    shape?: Record<string, unknown>;
    valueType?: unknown;
    element?: unknown;
    schema?: unknown;
  };
  const def = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;
  const unwrap = (s: unknown): unknown => {
    for (let i = 0; i < 20; i++) {
      const d = def(s);
      if (d.innerType !== undefined) s = d.innerType;
      else if (d.type === "pipe" && d.in !== undefined) s = d.in;
      else return s;
    }
    return s;
  };
  let s: unknown = unwrap(configSchema);
  for (const key of path) {
    const d = def(s);
    if (d.type === "object" && d.shape && typeof key === "string" && d.shape[key] !== undefined) s = unwrap(d.shape[key]);
    else if (d.type === "record") s = unwrap(d.valueType);
    else if (d.type === "array") s = unwrap(d.element);
    else return [];
  }
  const d = def(s);
  return d.type === "object" && d.shape ? Object.keys(d.shape) : [];
}

function suggest(key: string, known: readonly string[]): string {
  if (known.length === 0) return "";
  const close = known.filter((k) => editDistance(k, key) <= Math.max(1, Math.floor(k.length / 4)));
  if (close.length > 0) return ` (did you mean ${close.map((k) => `"${k}"`).join(" or ")}?)`;
  return ` (expected one of: ${known.join(", ")})`;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let prevPrev = prev;
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      // A swap of two neighbours ("nmae") counts as one edit.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prevPrev[j - 2]! + 1);
      cur.push(d);
    }
    prevPrev = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
