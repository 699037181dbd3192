// No import cycles in src/ (type-only imports included: see test/support/import_graph.ts), and the
// graph reader itself finds the cycles it is meant to find.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cycles, describeCycle, importGraph, parseImports } from "../support/import_graph.ts";

const SRC = join(import.meta.dir, "../../src");

test("src/ has no import cycles", () => {
  const g = importGraph(SRC);
  expect(g.files.length).toBeGreaterThan(100);
  const found = cycles(g).map((scc) => describeCycle(g, scc));
  if (found.length > 0) console.error(`import cycles in src/:\n${found.map((c) => `  ${c}`).join("\n")}`);
  expect(found).toEqual([]);
});

test("every import form is read, and only relative ones", () => {
  const text = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    'import c, { type D } from "./c.ts";',
    "import * as e from './e.ts';",
    'import {\n  f,\n  g,\n} from "./fg.ts";',
    'export { h } from "./h.ts";',
    'export type { I } from "./i.ts";',
    'export * from "./j.ts";',
    'import "./k.ts";',
    'const l = await import("./l.ts");',
    'import { z } from "zod";',
    '// import { m } from "./m.ts";',
    'const s = "import { n } from ./n.ts";',
  ].join("\n");
  expect(parseImports(text)).toEqual([
    { specifier: "./a.ts", kind: "value" },
    { specifier: "../b.ts", kind: "type" },
    { specifier: "./c.ts", kind: "value" },
    { specifier: "./e.ts", kind: "value" },
    { specifier: "./fg.ts", kind: "value" },
    { specifier: "./h.ts", kind: "value" },
    { specifier: "./i.ts", kind: "type" },
    { specifier: "./j.ts", kind: "value" },
    { specifier: "./k.ts", kind: "value" },
    { specifier: "./l.ts", kind: "dynamic" },
  ]);
});

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "import-graph-"));
  dirs.push(root);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(root, name, ".."), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  return root;
}

test("a cycle through a type-only import is found and printed as a chain", () => {
  const g = importGraph(
    tree({
      "a/top.ts": 'import { low } from "../b/low.ts";\nexport const top = low;\n',
      "b/low.ts": 'import type { T } from "./mid.ts";\nexport const low = 1;\n',
      "b/mid.ts": 'import type { top } from "../a/top.ts";\nexport type T = typeof top;\n',
      "c/alone.ts": 'import { low } from "../b/low.ts";\nexport const x = low;\n',
      "c/self.ts": 'export * from "./self.ts";\n',
    }),
  );
  const found = cycles(g);
  expect(found).toEqual([["a/top.ts", "b/low.ts", "b/mid.ts"], ["c/self.ts"]]);
  expect(describeCycle(g, found[0]!)).toBe(
    "a/top.ts -> b/low.ts -> b/mid.ts (type) -> a/top.ts (type)   [component: a/top.ts, b/low.ts, b/mid.ts]",
  );
  expect(describeCycle(g, found[1]!)).toBe("c/self.ts -> c/self.ts   [component: c/self.ts]");
});

test("an acyclic tree has no cycles, and an import of a missing file is an error", () => {
  expect(cycles(importGraph(tree({ "a.ts": 'import { b } from "./b.ts";\n', "b.ts": "export const b = 1;\n" })))).toEqual([]);
  expect(() => importGraph(tree({ "a.ts": 'import { b } from "./gone.ts";\n' }))).toThrow(/a.ts imports .\/gone.ts/);
});
