// ACL policy rules: parse the HCL text of a policy into path rules and coarse
// operator/agent levels, merge a token's policies, and answer "may this token do X".
// Deny by default; for a variable path the most specific rule wins (exact beats glob, longer glob beats shorter).
import { ConfigError } from "../config/config_error.ts";
import { parseHcl } from "../config/hcl.ts";
import { fileTree, type MapNode, type TreeNode } from "../config/tree.ts";
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";

export const POLICY_LIMITS = {
  rulesMaxBytes: 64 * 1024,
  pathRulesMax: 256,
  /** A variable path is at most 128 characters; a pattern may add the trailing "*". */
  patternMaxChars: 129,
} as const;

export const VAR_CAPABILITIES = ["read", "list", "write", "destroy", "deny"] as const;
export type VarCapability = (typeof VAR_CAPABILITIES)[number];
export const LEVELS = ["deny", "read", "write"] as const;
export type Level = (typeof LEVELS)[number];

/** One `path "PATTERN" { capabilities = [...] }` rule. */
export interface PathRule {
  readonly pattern: string;
  readonly capabilities: ReadonlySet<VarCapability>;
}

export interface ParsedPolicy {
  readonly variables: readonly PathRule[];
  /** Undefined when the policy has no such block (it then grants nothing there). */
  readonly operator: Level | undefined;
  readonly agent: Level | undefined;
}

/** Invalid rules text; the message names the line and column. */
export class PolicyRulesError extends EdgeError {
  constructor(message: string) {
    super("BAD_REQUEST", `invalid policy rules: ${message}`);
    this.name = "PolicyRulesError";
  }
}

const PATTERN_RE = /^[a-zA-Z0-9\-_~/]*\*?$/;
const TOP_BLOCKS = ["variables", "operator", "agent"];

function where(n: TreeNode): string {
  return `${n.keyLoc.line}:${n.keyLoc.col}`;
}

function fail(n: TreeNode, what: string): never {
  throw new PolicyRulesError(`${where(n)}: ${what}`);
}

function block(n: TreeNode, name: string): MapNode {
  if (n.kind !== "map" || n.origin !== "block") fail(n, `"${name}" must be a block: ${name} { ... }`);
  return n;
}

/** Why `pattern` is not a usable path pattern, or undefined. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'a path pattern must not be empty (use "*" for every path)';
  if (pattern.length > POLICY_LIMITS.patternMaxChars)
    return `path pattern is ${pattern.length} characters; the limit is ${POLICY_LIMITS.patternMaxChars}`;
  if (!PATTERN_RE.test(pattern)) return `path pattern "${pattern}" may only contain letters, digits, - _ ~ / and one "*" at the end`;
  if (pattern.startsWith("/")) return `path pattern "${pattern}" must not start with "/"`;
  if (pattern.includes("//")) return `path pattern "${pattern}" must not contain "//"`;
  return undefined;
}

function parseVariables(n: TreeNode): PathRule[] {
  const body = block(n, "variables");
  const rules: PathRule[] = [];
  for (const [key, child] of body.entries) {
    if (key !== "path") fail(child, `unknown key "${key}" in variables; expected path "PATTERN" { capabilities = [...] }`);
    if (child.kind !== "map" || child.origin !== "labels") fail(child, 'expected path "PATTERN" { capabilities = [...] }');
    for (const [pattern, rule] of child.entries) {
      const problem = patternProblem(pattern);
      if (problem) fail(rule, problem);
      const r = block(rule, `path "${pattern}"`);
      let caps: Set<VarCapability> | undefined;
      for (const [k, v] of r.entries) {
        if (k !== "capabilities") fail(v, `unknown key "${k}" in path "${pattern}"; expected capabilities`);
        if (v.kind !== "list") fail(v, `capabilities must be a list of strings, e.g. ["read", "list"]`);
        caps = new Set();
        for (const item of v.items) {
          const c = item.kind === "scalar" ? item.value : undefined;
          if (typeof c !== "string" || !(VAR_CAPABILITIES as readonly string[]).includes(c)) {
            fail(item, `unknown capability ${JSON.stringify(c ?? item.kind)}; expected one of ${VAR_CAPABILITIES.join(", ")}`);
          }
          caps.add(c as VarCapability);
        }
      }
      if (!caps) fail(rule, `path "${pattern}" needs capabilities = [...]`);
      rules.push({ pattern, capabilities: caps });
      if (rules.length > POLICY_LIMITS.pathRulesMax) fail(rule, `more than ${POLICY_LIMITS.pathRulesMax} path rules`);
    }
  }
  return rules;
}

function parseLevel(n: TreeNode, name: string): Level {
  const body = block(n, name);
  let level: Level | undefined;
  for (const [k, v] of body.entries) {
    if (k !== "policy") fail(v, `unknown key "${k}" in ${name}; expected policy = "read" | "write" | "deny"`);
    const s = v.kind === "scalar" ? v.value : undefined;
    if (typeof s !== "string" || !(LEVELS as readonly string[]).includes(s))
      fail(v, `${name} policy must be one of "read", "write", "deny"`);
    level = s as Level;
  }
  if (!level) fail(n, `${name} needs policy = "read" | "write" | "deny"`);
  return level;
}

/** Parse a policy's rules text (HCL). Throws PolicyRulesError with `line:col` on anything unexpected. */
export function parsePolicyRules(text: string): ParsedPolicy {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > POLICY_LIMITS.rulesMaxBytes)
    throw new PolicyRulesError(`rules are ${bytes} bytes; the limit is ${POLICY_LIMITS.rulesMaxBytes}`);
  let root: MapNode;
  try {
    root = fileTree(parseHcl(text, "rules"));
  } catch (e) {
    // ConfigError messages start with "rules:line:col: "; keep only "line:col: ...".
    if (e instanceof ConfigError) throw new PolicyRulesError(e.message.replace(/^rules:/, ""));
    throw e;
  }
  let variables: PathRule[] = [];
  let operator: Level | undefined;
  let agent: Level | undefined;
  for (const [key, n] of root.entries) {
    if (key === "variables") variables = parseVariables(n);
    else if (key === "operator") operator = parseLevel(n, "operator");
    else if (key === "agent") agent = parseLevel(n, "agent");
    else fail(n, `unknown block "${key}"; expected one of ${TOP_BLOCKS.join(", ")}`);
  }
  return { variables, operator, agent };
}

export type VarOp = "read" | "list" | "write" | "destroy";

/**
 * The merged rules of every policy of one client token. Capabilities of the same pattern across
 * policies add up, except that "deny" on a pattern wins over everything on it (as in Nomad).
 */
export class PolicySet {
  private readonly exact = new Map<string, ReadonlySet<VarCapability>>();
  /** Glob rules by their literal prefix, longest first. */
  private readonly globs: { prefix: string; caps: ReadonlySet<VarCapability> }[] = [];
  private readonly operator: Level | undefined;
  private readonly agent: Level | undefined;

  constructor(policies: readonly ParsedPolicy[]) {
    const exact = new Map<string, Set<VarCapability>>();
    const globs = new Map<string, Set<VarCapability>>();
    for (const p of policies) {
      for (const r of p.variables) {
        const glob = r.pattern.endsWith("*");
        const table = glob ? globs : exact;
        const key = glob ? r.pattern.slice(0, -1) : r.pattern;
        const set = table.get(key) ?? new Set<VarCapability>();
        for (const c of r.capabilities) set.add(c);
        table.set(key, set);
      }
    }
    for (const [k, v] of exact) this.exact.set(k, v);
    for (const [prefix, caps] of globs) this.globs.push({ prefix, caps });
    this.globs.sort((a, b) => b.prefix.length - a.prefix.length);
    this.operator = mergeLevels(policies.map((p) => p.operator));
    this.agent = mergeLevels(policies.map((p) => p.agent));
  }

  /** The capabilities of the most specific rule for `path`, or undefined when no rule matches. */
  private ruleFor(path: string): ReadonlySet<VarCapability> | undefined {
    const e = this.exact.get(path);
    if (e) return e;
    for (const g of this.globs) if (path.startsWith(g.prefix)) return g.caps;
    return undefined;
  }

  allowsVar(path: string, op: VarOp): boolean {
    return grants(this.ruleFor(path), op);
  }

  /**
   * Whether `op` is allowed on every path that starts with `prefix` (what a listing of the prefix
   * may return). The rule that covers the prefix as a whole must grant it, and so must every more
   * specific rule inside it.
   */
  allowsAllUnder(prefix: string, op: VarOp): boolean {
    const cover = this.globs.find((g) => prefix.startsWith(g.prefix));
    if (!grants(cover?.caps, op)) return false;
    assert(cover !== undefined, "a granting cover rule exists");
    for (const g of this.globs) {
      if (g.prefix.length > cover.prefix.length && g.prefix.startsWith(prefix) && !grants(g.caps, op)) return false;
    }
    for (const [p, caps] of this.exact) {
      if (p.startsWith(prefix) && !grants(caps, op)) return false;
    }
    return true;
  }

  allowsOperator(need: "read" | "write"): boolean {
    return levelAllows(this.operator, need);
  }

  allowsAgent(need: "read" | "write"): boolean {
    return levelAllows(this.agent, need);
  }
}

function grants(caps: ReadonlySet<VarCapability> | undefined, op: VarOp): boolean {
  return caps !== undefined && !caps.has("deny") && caps.has(op);
}

function mergeLevels(levels: readonly (Level | undefined)[]): Level | undefined {
  let out: Level | undefined;
  for (const l of levels) {
    if (l === undefined) continue;
    if (l === "deny") return "deny";
    if (out === undefined || (out === "read" && l === "write")) out = l;
  }
  return out;
}

function levelAllows(l: Level | undefined, need: "read" | "write"): boolean {
  if (l === undefined || l === "deny") return false;
  return need === "read" || l === "write";
}
