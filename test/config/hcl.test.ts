// Unit tests of the HCL subset parser: values, escapes, heredocs, comments, nesting, and the
// exact position and wording of syntax errors.
import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/config/config_error.ts";
import { HCL_LIMITS, parseHcl, type HclBody, type HclValue } from "../../src/config/hcl.ts";
import { fileTree, treeToPlain } from "../../src/config/tree.ts";

/** Strip positions so structure can be compared with toEqual. */
function plainValue(v: HclValue): unknown {
  switch (v.kind) {
    case "list":
      return v.items.map(plainValue);
    case "object":
      return Object.fromEntries(v.entries.map((e) => [e.key, plainValue(e.value)]));
    case "null":
      return null;
    default:
      return v.value;
  }
}

function plainBody(b: HclBody): unknown[] {
  return b.items.map((it) =>
    it.kind === "attribute"
      ? [it.name, plainValue(it.value)]
      : { block: it.type, labels: it.labels.map((l) => l.value), body: plainBody(it.body) },
  );
}

function attr(text: string): unknown {
  const f = parseHcl(`x = ${text}\n`, "t.hcl");
  const it = f.body.items[0];
  if (it?.kind !== "attribute") throw new Error("no attribute");
  return plainValue(it.value);
}

function errorOf(text: string, file = "t.hcl"): string {
  try {
    parseHcl(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe("CONFIG");
    return (e as Error).message;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(text)}`);
}

describe("values", () => {
  test("literals", () => {
    expect(attr("1")).toBe(1);
    expect(attr("-12")).toBe(-12);
    expect(attr("1.5")).toBe(1.5);
    expect(attr("2e3")).toBe(2000);
    expect(attr("1.5E-1")).toBe(0.15);
    expect(attr("true")).toBe(true);
    expect(attr("false")).toBe(false);
    expect(attr("null")).toBe(null);
    expect(attr('""')).toBe("");
    expect(attr('"a b"')).toBe("a b");
  });

  test("string escapes", () => {
    expect(attr(String.raw`"a\nb\tc\rd\"e\\f"`)).toBe('a\nb\tc\rd"e\\f');
    expect(attr(String.raw`"\u00e9\U0001F600"`)).toBe("é😀");
    expect(attr('"$${x} %%{y} $ % $$ 100%"')).toBe("${x} %{y} $ % $$ 100%");
    expect(attr('"ünïcødé 😀"')).toBe("ünïcødé 😀");
  });

  test("lists", () => {
    expect(attr("[]")).toEqual([]);
    expect(attr('[1, "a", true, null]')).toEqual([1, "a", true, null]);
    expect(attr("[1, 2,]")).toEqual([1, 2]);
    expect(attr("[\n  1,\n  2\n]")).toEqual([1, 2]);
    expect(attr("[[1], [2, [3]]]")).toEqual([[1], [2, [3]]]);
  });

  test("objects: commas, newlines, spaces, colons, quoted keys", () => {
    expect(attr("{}")).toEqual({});
    expect(attr('{ a = 1, b = "x" }')).toEqual({ a: 1, b: "x" });
    expect(attr('{\n  a = 1\n  b = "x"\n}')).toEqual({ a: 1, b: "x" });
    expect(attr("{ a = 1  b = 2 }")).toEqual({ a: 1, b: 2 });
    expect(attr('{ "a.b" : 1, c: [1] }')).toEqual({ "a.b": 1, c: [1] });
    expect(attr("{ a = { b = { c = 1 } } }")).toEqual({ a: { b: { c: 1 } } });
  });

  test("heredocs", () => {
    expect(attr("<<EOF\nline one\n  line two\nEOF")).toBe("line one\n  line two\n");
    expect(attr("<<EOF\nEOF")).toBe("");
    expect(attr("<<-EOT\n    a\n      b\n\n    c\n    EOT")).toBe("a\n  b\n\nc\n");
    expect(attr('<<EOF\n  no \\n escapes "here" $${x}\n  EOF')).toBe('  no \\n escapes "here" ${x}\n');
    // The marker must be alone on its line: "EOFX" and "x EOF" are content.
    expect(attr("<<EOF\nEOFX\nx EOF\nEOF")).toBe("EOFX\nx EOF\n");
    const f = parseHcl('a = <<EOF\nhello\nEOF\nb = "after"\n', "t.hcl");
    expect(plainBody(f.body)).toEqual([
      ["a", "hello\n"],
      ["b", "after"],
    ]);
    const b = f.body.items[1];
    expect(b?.pos).toEqual({ line: 4, col: 1 });
  });

  test("comments in every form and place", () => {
    const f = parseHcl(
      [
        "# hash comment",
        "// slash comment",
        "/* block",
        "   comment */ a = 1 # trailing",
        "b = [1, /* inside */ 2] // trailing",
        "c = { /* x */ k = 1 }",
        'd = "# not a comment // nor this"',
      ].join("\n"),
      "t.hcl",
    );
    expect(plainBody(f.body)).toEqual([
      ["a", 1],
      ["b", [1, 2]],
      ["c", { k: 1 }],
      ["d", "# not a comment // nor this"],
    ]);
    expect(f.body.items[0]?.pos).toEqual({ line: 4, col: 15 });
  });
});

describe("bodies", () => {
  test("blocks with zero, one and two labels, nested, attributes on one line", () => {
    const f = parseHcl(
      [
        'name = "n"',
        "ports { http = 1  rpc = 2 }",
        'federation { region "east" { servers = ["a:1"] } region "west" {} }',
        'a "x" "y" { b { c = 1 } }',
      ].join("\n"),
      "t.hcl",
    );
    expect(plainBody(f.body)).toEqual([
      ["name", "n"],
      {
        block: "ports",
        labels: [],
        body: [
          ["http", 1],
          ["rpc", 2],
        ],
      },
      {
        block: "federation",
        labels: [],
        body: [
          { block: "region", labels: ["east"], body: [["servers", ["a:1"]]] },
          { block: "region", labels: ["west"], body: [] },
        ],
      },
      { block: "a", labels: ["x", "y"], body: [{ block: "b", labels: [], body: [["c", 1]] }] },
    ]);
  });

  test("positions of attributes, blocks, labels and values", () => {
    const f = parseHcl('\n  server {\n\tx   = "v"\n  }\nfed "lbl" {}\n', "t.hcl");
    const server = f.body.items[0];
    expect(server?.kind).toBe("block");
    if (server?.kind !== "block") return;
    expect(server.pos).toEqual({ line: 2, col: 3 });
    const x = server.body.items[0];
    if (x?.kind !== "attribute") throw new Error("expected attribute");
    expect(x.pos).toEqual({ line: 3, col: 2 });
    expect(x.value.pos).toEqual({ line: 3, col: 8 });
    const fed = f.body.items[1];
    if (fed?.kind !== "block") throw new Error("expected block");
    expect(fed.labels[0]?.pos).toEqual({ line: 5, col: 5 });
  });

  test("empty files, BOM and CRLF", () => {
    expect(parseHcl("", "t.hcl").body.items).toEqual([]);
    expect(parseHcl("  \n# only a comment\n", "t.hcl").body.items).toEqual([]);
    const f = parseHcl("\uFEFFa = 1\r\nb = <<EOF\r\nx\r\nEOF\r\n", "t.hcl");
    expect(plainBody(f.body)).toEqual([
      ["a", 1],
      ["b", "x\n"],
    ]);
    expect(f.body.items[1]?.pos).toEqual({ line: 2, col: 1 });
  });

  test("identifiers may contain dashes and digits", () => {
    expect(plainBody(parseHcl("a-b_2 = 1", "t.hcl").body)).toEqual([["a-b_2", 1]]);
  });
});

describe("trees (independent of the config schema)", () => {
  test("ACL policy rules become maps by block type and label", () => {
    const text =
      'variables {\n  path "app/*" { capabilities = ["read", "list"] }\n  path "ops/*" {\n    capabilities = ["write"]\n  }\n}\n';
    const tree = fileTree(parseHcl(text, "policy.hcl"));
    expect(JSON.parse(JSON.stringify(treeToPlain(tree)))).toEqual({
      variables: { path: { "app/*": { capabilities: ["read", "list"] }, "ops/*": { capabilities: ["write"] } } },
    });
    const ops = tree.entries.get("variables");
    if (ops?.kind !== "map") throw new Error("expected a map");
    const group = ops.entries.get("path");
    if (group?.kind !== "map") throw new Error("expected a map");
    expect(group.entries.get("ops/*")?.keyLoc).toEqual({ file: "policy.hcl", line: 3, col: 8 });
  });
});

describe("errors name file:line:col and what was expected", () => {
  const cases: [string, string][] = [
    ["a = ", "t.hcl:1:5: expected a value but found end of file"],
    ["a = 1\nb 2", 't.hcl:2:3: expected "=" or "{" after "b" but found number 2'],
    ["a = 1\n= 2", 't.hcl:2:1: expected an attribute name or a block but found "="'],
    ['a "x" = 1', 't.hcl:1:7: expected a block label or "{" but found "="'],
    ["server {\n  a = 1\n", 't.hcl:3:1: expected "}" to close the block opened at 1:1 but found end of file'],
    ["a = 1 }", 't.hcl:1:7: expected an attribute name or a block but found "}"'],
    ["a = [1 2]", 't.hcl:1:8: expected "," or "]" to continue the list opened at 1:5 but found number 2'],
    ["a = [1,", "t.hcl:1:8: expected a value but found end of file"],
    ["a = { b 1 }", 't.hcl:1:9: expected "=" after the key "b" but found number 1'],
    ["a = { 1 = 2 }", 't.hcl:1:7: expected an object key or "}" to close the object opened at 1:5 but found number 1'],
    ["a = { b = 1, b = 2 }", 't.hcl:1:14: key "b" is already set at 1:7'],
    ["a = 1\na = 2", 't.hcl:2:1: attribute "a" is already set at 1:1'],
    ["a = foo", 't.hcl:1:5: expected a value (variables and expressions are not supported) but found "foo"'],
    [
      'a = "abc\n"',
      `t.hcl:1:5: unterminated string: expected a closing '"' before the end of the line (use a heredoc for text over several lines)`,
    ],
    [
      'a = "abc',
      `t.hcl:1:5: unterminated string: expected a closing '"' before the end of the line (use a heredoc for text over several lines)`,
    ],
    ['a = "x\\qy"', 't.hcl:1:7: invalid escape: expected one of \\n \\r \\t \\" \\\\ \\uXXXX \\UXXXXXXXX but found "\\\\q"'],
    ['a = "\\u12"', 't.hcl:1:6: invalid escape: expected 4 hex digits after "\\u" but found "12\\""'],
    ['a = "\\UFFFFFFFF"', 't.hcl:1:6: invalid escape: "\\UFFFFFFFF" is not a Unicode scalar value'],
    ['a = "x ${var.y}"', 't.hcl:1:8: template sequence "${" is not supported (write "$${" for a literal "${")'],
    ['a = "%{ if x }"', 't.hcl:1:6: template sequence "%{" is not supported (write "%%{" for a literal "%{")'],
    ["a = <<EOF\nabc\n", 't.hcl:1:5: unterminated heredoc: expected a line "EOF" to close it but found end of file'],
    ["a = <<EOF x\nEOF", 't.hcl:1:11: expected a newline after the heredoc marker "EOF" but found "x"'],
    ["a = << EOF\nEOF", 't.hcl:1:7: expected a heredoc marker such as "EOF" after "<<"'],
    ["a = <<EOF\n${x}\nEOF", 't.hcl:1:5: template sequence "${" is not supported in a heredoc (write "$${" for a literal "${")'],
    ["a = 15s", 't.hcl:1:5: expected a number but found "15s" (durations and sizes are quoted strings, e.g. "15s")'],
    ["a = 1.2.3", 't.hcl:1:5: expected a number but found "1.2.3" (durations and sizes are quoted strings, e.g. "15s")'],
    ["a = -", 't.hcl:1:5: expected a number after "-" but found end of file'],
    ["a = 1\n  /* open", 't.hcl:2:3: unterminated comment: expected "*/" to close the "/*" but found end of file'],
    ["a = 1\n\n   @", 't.hcl:3:4: unexpected character "@"'],
    ["a = 'x'", `t.hcl:1:5: unexpected character "'"`],
    ["a = 1e999", "t.hcl:1:5: number 1e999 is out of range"],
    ["/* c\n c */ a = ]", 't.hcl:2:11: expected a value but found "]"'],
    ["\ta = <<X\n1\nX\nb = [", "t.hcl:4:6: expected a value but found end of file"],
    ['x { "lbl" = 1 }', 't.hcl:1:5: expected an attribute name, a block or "}" but found string "lbl"'],
  ];
  for (const [src, msg] of cases) {
    test(JSON.stringify(src), () => {
      expect(errorOf(src)).toBe(msg);
    });
  }

  test("the error carries its location as fields", () => {
    try {
      parseHcl("a = 1\nb =", "dir/f.hcl");
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const ce = e as ConfigError;
      expect(ce.loc).toEqual({ file: "dir/f.hcl", line: 2, col: 4 });
      expect(ce.what).toBe("expected a value but found end of file");
      expect(ce.status).toBe(400);
    }
  });
});

describe("limits", () => {
  test("files over the byte limit are refused before parsing", () => {
    const big = `a = "${"x".repeat(HCL_LIMITS.maxBytes)}"`;
    expect(errorOf(big)).toBe(`t.hcl:1:1: file is ${HCL_LIMITS.maxBytes + 6} bytes; the limit is ${HCL_LIMITS.maxBytes}`);
  });

  test("nesting deeper than the bound is an error, not a stack overflow", () => {
    const d = HCL_LIMITS.maxDepth;
    // A top-level attribute's value is level 1; each list, object or block adds one.
    expect(() => parseHcl(`a = ${"[".repeat(d)}${"]".repeat(d)}`, "t.hcl")).not.toThrow();
    expect(errorOf(`a = ${"[".repeat(d + 1)}${"]".repeat(d + 1)}`)).toBe(`t.hcl:1:${5 + d}: nesting is deeper than ${d} levels`);
    expect(() => parseHcl(`${"b {".repeat(d)}${"}".repeat(d)}`, "t.hcl")).not.toThrow();
    expect(errorOf(`${"b {".repeat(d + 1)}`)).toBe(`t.hcl:1:${3 * d + 3}: nesting is deeper than ${d} levels`);
    expect(errorOf(`a = ${"[".repeat(100_000)}`)).toMatch(/nesting is deeper than 32 levels$/);
  });
});
