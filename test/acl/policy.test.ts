// Policy rules: parsing (with positions in errors) and evaluation tables.
import { describe, expect, test } from "bun:test";
import { parsePolicyRules, PolicyRulesError, PolicySet, type VarOp } from "../../src/server/acl_policy.ts";

const set = (...texts: string[]) => new PolicySet(texts.map(parsePolicyRules));

describe("parsing", () => {
  test("variables, operator and agent blocks", () => {
    const p = parsePolicyRules(`
variables {
  path "app/*" { capabilities = ["read", "list"] }
  path "app/db" {
    capabilities = ["deny"]
  }
}
operator { policy = "read" }
agent { policy = "write" }
`);
    expect(p.variables.map((r) => [r.pattern, [...r.capabilities]])).toEqual([
      ["app/*", ["read", "list"]],
      ["app/db", ["deny"]],
    ]);
    expect(p.operator).toBe("read");
    expect(p.agent).toBe("write");
  });

  test("empty rules grant nothing", () => {
    const p = parsePolicyRules("");
    expect(p.variables).toEqual([]);
    expect(p.operator).toBeUndefined();
  });

  const bad: [string, string][] = [
    ['namespace "x" {}', '1:1: unknown block "namespace"; expected one of variables, operator, agent'],
    [
      'variables { path "a/*" { capabilities = ["read", "fly"] } }',
      '1:50: unknown capability "fly"; expected one of read, list, write, destroy, deny',
    ],
    ['variables { path "a/*" { caps = ["read"] } }', '1:26: unknown key "caps" in path "a/*"; expected capabilities'],
    ['variables { path "a/*" { capabilities = "read" } }', '1:26: capabilities must be a list of strings, e.g. ["read", "list"]'],
    ['variables { path "a/*" { } }', '1:18: path "a/*" needs capabilities = [...]'],
    [
      'variables { path "a/*/b" { capabilities = [] } }',
      '1:18: path pattern "a/*/b" may only contain letters, digits, - _ ~ / and one "*" at the end',
    ],
    ['variables { path "" { capabilities = [] } }', '1:18: a path pattern must not be empty (use "*" for every path)'],
    ['variables { path "/a" { capabilities = [] } }', '1:18: path pattern "/a" must not start with "/"'],
    ["variables { other = 1 }", '1:13: unknown key "other" in variables; expected path "PATTERN" { capabilities = [...] }'],
    ["variables = 1", '1:1: "variables" must be a block: variables { ... }'],
    ['operator { policy = "admin" }', '1:12: operator policy must be one of "read", "write", "deny"'],
    ["variables {\n", '2:1: expected "}" to close the block opened at 1:1 but found end of file'],
    ['variables { path "a" { capabilities = [] } }\nvariables {}', "2:1: block variables is already defined at 1:1"],
  ];
  for (const [text, msg] of bad) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      let err: unknown;
      try {
        parsePolicyRules(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PolicyRulesError);
      expect((err as PolicyRulesError).code).toBe("BAD_REQUEST");
      expect((err as Error).message).toBe(`invalid policy rules: ${msg}`);
    });
  }

  test("bounded size", () => {
    const big = `# ${"x".repeat(70 * 1024)}\n`;
    expect(() => parsePolicyRules(big)).toThrow(/rules are \d+ bytes; the limit is 65536/);
  });

  test("bounded number of path rules", () => {
    const rules = Array.from({ length: 257 }, (_, i) => `path "p${i}" { capabilities = ["read"] }`).join("\n");
    expect(() => parsePolicyRules(`variables {\n${rules}\n}`)).toThrow(/more than 256 path rules/);
  });
});

describe("evaluation: most specific path wins, deny by default", () => {
  const s = set(`
variables {
  path "*"            { capabilities = ["list"] }
  path "app/*"        { capabilities = ["read", "list"] }
  path "app/web/*"    { capabilities = ["read", "list", "write", "destroy"] }
  path "app/web/key"  { capabilities = ["read"] }
  path "app/secret/*" { capabilities = ["deny"] }
  path "app/exact"    { capabilities = ["write"] }
}`);
  const cases: [string, VarOp, boolean][] = [
    ["app/x", "read", true],
    ["app/x", "write", false],
    ["app/x", "destroy", false],
    ["app/web/x", "write", true],
    ["app/web/x", "destroy", true],
    ["app/web/key", "read", true], // exact beats the longer glob
    ["app/web/key", "write", false],
    ["app/secret/a", "read", false], // deny
    ["app/secret/a", "list", false],
    ["app/exact", "write", true],
    ["app/exact", "read", false], // the exact rule alone decides
    ["app", "read", false], // "app/*" does not match "app"
    ["app", "list", true], // falls to "*"
    ["other", "read", false],
    ["other", "list", true],
  ];
  for (const [path, op, want] of cases) {
    test(`${op} ${path} -> ${want}`, () => expect(s.allowsVar(path, op)).toBe(want));
  }

  test("with no rules everything is denied", () => {
    const none = set("");
    for (const op of ["read", "list", "write", "destroy"] as const) expect(none.allowsVar("a", op)).toBe(false);
    expect(none.allowsAllUnder("", "list")).toBe(false);
    expect(none.allowsOperator("read")).toBe(false);
    expect(none.allowsAgent("read")).toBe(false);
  });
});

describe("listing a prefix needs list on everything under it", () => {
  const s = set(`
variables {
  path "app/*"        { capabilities = ["read", "list"] }
  path "app/hidden/*" { capabilities = ["read"] }
  path "ops/*"        { capabilities = ["list"] }
  path "ops/one"      { capabilities = ["deny"] }
  path "pub/*"        { capabilities = ["list"] }
  path "pub/sub/*"    { capabilities = ["list", "write"] }
}`);
  const cases: [string, boolean][] = [
    ["app/", false], // app/hidden/* lacks list
    ["app/x", true],
    ["app/hidden/", false],
    ["ops/", false], // ops/one denies
    ["ops/t", true],
    ["pub/", true],
    ["pub/sub/", true],
    ["", false],
    ["zzz", false],
  ];
  for (const [prefix, want] of cases) {
    test(`list "${prefix}" -> ${want}`, () => expect(s.allowsAllUnder(prefix, "list")).toBe(want));
  }
  test('"*" covers the empty prefix', () =>
    expect(set('variables { path "*" { capabilities = ["list"] } }').allowsAllUnder("", "list")).toBe(true));
});

describe("merging policies", () => {
  test("capabilities of one pattern add up across policies", () => {
    const s = set('variables { path "a/*" { capabilities = ["read"] } }', 'variables { path "a/*" { capabilities = ["write"] } }');
    expect(s.allowsVar("a/x", "read")).toBe(true);
    expect(s.allowsVar("a/x", "write")).toBe(true);
  });
  test("deny on a pattern wins over another policy's grant", () => {
    const s = set('variables { path "a/*" { capabilities = ["read"] } }', 'variables { path "a/*" { capabilities = ["deny"] } }');
    expect(s.allowsVar("a/x", "read")).toBe(false);
  });
  test("operator and agent levels: the highest wins, deny beats all", () => {
    expect(set('operator { policy = "read" }', 'operator { policy = "write" }').allowsOperator("write")).toBe(true);
    expect(set('operator { policy = "read" }').allowsOperator("write")).toBe(false);
    expect(set('operator { policy = "read" }').allowsOperator("read")).toBe(true);
    expect(set('operator { policy = "write" }', 'operator { policy = "deny" }').allowsOperator("read")).toBe(false);
    expect(set('agent { policy = "read" }').allowsAgent("read")).toBe(true);
  });
});
