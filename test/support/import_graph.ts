// The import graph of a source tree: which file imports which (relative specifiers only), and the
// strongly connected components of that graph, so a test can say "no import cycles" and name them.
//
// Type-only imports (`import type`, `export type ... from`) are edges too: they do not run, but
// they are how a module depends on another one's contract, and a contract that points back up
// (server/ reading a type from http/) is the layering fault a cycle test is meant to catch.
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Glob } from "bun";

export type EdgeKind = "value" | "type" | "dynamic";

export interface ImportEdge {
  from: string;
  to: string;
  kind: EdgeKind;
}

export interface ImportGraph {
  /** Files by their path relative to the root, sorted. */
  files: string[];
  edges: ImportEdge[];
}

// A static import or re-export with a clause (`import x, { y } from`, `export * as n from`, ...).
// Anchored at a line's start, so comments and strings that mention "from" are not read as imports.
const CLAUSE_RE =
  /^[ \t]*(import|export)\s+(type\s+)?((?:[\w$]+\s*,\s*)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?)|[\w$]+)\s+from\s+["']([^"']+)["']/gm;
const BARE_RE = /^[ \t]*import\s+["']([^"']+)["']/gm;
const DYNAMIC_RE = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The relative imports one file's text makes, as written (specifier and kind). */
export function parseImports(text: string): { specifier: string; kind: EdgeKind }[] {
  const out: { specifier: string; kind: EdgeKind }[] = [];
  for (const m of text.matchAll(CLAUSE_RE)) {
    // Under verbatimModuleSyntax `import { type A } from` still loads the module; only `import type` is erased.
    out.push({ specifier: m[4]!, kind: m[2] ? "type" : "value" });
  }
  for (const m of text.matchAll(BARE_RE)) out.push({ specifier: m[1]!, kind: "value" });
  for (const m of text.matchAll(DYNAMIC_RE)) out.push({ specifier: m[1]!, kind: "dynamic" });
  return out.filter((i) => i.specifier.startsWith("."));
}

/** The graph of every `*.ts` and `*.tsx` file under `root`. An import of a file that does not exist is an error. */
export function importGraph(root: string): ImportGraph {
  const abs = resolve(root);
  const files = [...new Glob("**/*.{ts,tsx}").scanSync({ cwd: abs })].map((f) => f.split("\\").join("/")).sort();
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    const text = readFileSync(join(abs, from), "utf8");
    for (const { specifier, kind } of parseImports(text)) {
      const to = relative(abs, resolve(abs, dirname(from), specifier))
        .split("\\")
        .join("/");
      if (!known.has(to)) throw new Error(`${from} imports ${specifier}, which is not a .ts or .tsx file under ${root}`);
      edges.push({ from, to, kind });
    }
  }
  return { files, edges };
}

/** Strongly connected components with more than one file, or one file importing itself (Tarjan). */
export function cycles(g: ImportGraph): string[][] {
  const next = new Map<string, string[]>();
  for (const f of g.files) next.set(f, []);
  for (const e of g.edges) next.get(e.from)!.push(e.to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  let counter = 0;
  // Iterative, so a deep import chain cannot overflow the call stack.
  for (const start of g.files) {
    if (index.has(start)) continue;
    const work: { node: string; i: number }[] = [{ node: start, i: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const succ = next.get(top.node)!;
      if (top.i < succ.length) {
        const w = succ[top.i++]!;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.node, Math.min(low.get(top.node)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) !== index.get(top.node)) continue;
      const scc: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
        if (w === top.node) break;
      }
      if (scc.length > 1 || succ.includes(top.node)) found.push(scc.sort());
    }
  }
  return found.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/**
 * One cycle through a component, as a readable chain with each edge's kind:
 * `a.ts -> b.ts (type) -> a.ts`. Shortest path back to the component's first file.
 */
export function describeCycle(g: ImportGraph, scc: string[]): string {
  const members = new Set(scc);
  const start = scc[0]!;
  const prev = new Map<string, ImportEdge>();
  const queue = [start];
  let closing: ImportEdge | undefined;
  for (let qi = 0; qi < queue.length && !closing; qi++) {
    const at = queue[qi]!;
    for (const e of g.edges) {
      if (e.from !== at || !members.has(e.to)) continue;
      if (e.to === start) {
        closing = e;
        break;
      }
      if (!prev.has(e.to)) {
        prev.set(e.to, e);
        queue.push(e.to);
      }
    }
  }
  if (!closing) throw new Error(`no cycle through ${start} in the component ${scc.join(", ")}`);
  const path: ImportEdge[] = [closing];
  for (let at = closing.from; at !== start; ) {
    const e = prev.get(at)!;
    path.unshift(e);
    at = e.from;
  }
  const kind = (e: ImportEdge) => (e.kind === "value" ? "" : ` (${e.kind})`);
  return `${start}${path.map((e) => ` -> ${e.to}${kind(e)}`).join("")}   [component: ${scc.join(", ")}]`;
}
