// Located value trees: an HCL body turned into nested maps (blocks by type, then by label) whose
// every node remembers where it was written, so that several files can be merged in order and a
// schema error on the merged value can still be reported at the right `file:line:col`.
import { assert } from "../lib/assert.ts";
import { ConfigError, type Loc } from "./config_error.ts";
import type { HclBody, HclFile, HclValue, Pos } from "./hcl.ts";

export type TreeNode =
  | { readonly kind: "scalar"; readonly value: string | number | boolean | null; readonly loc: Loc; readonly keyLoc: Loc }
  | { readonly kind: "list"; readonly items: readonly TreeNode[]; readonly loc: Loc; readonly keyLoc: Loc }
  | MapNode;

export interface MapNode {
  readonly kind: "map";
  readonly entries: Map<string, TreeNode>;
  /** "block": written as a block; "labels": groups blocks of one type by label; "object": `{ ... }`. */
  readonly origin: "block" | "labels" | "object" | "root";
  /** Where the value starts (a block's type name, an object's "{"). */
  readonly loc: Loc;
  /** Where the key that holds it was written (attribute name, block type, block label). */
  readonly keyLoc: Loc;
}

const at = (file: string, p: Pos): Loc => ({ file, line: p.line, col: p.col });

function valueNode(file: string, v: HclValue, keyLoc: Loc): TreeNode {
  const loc = at(file, v.pos);
  switch (v.kind) {
    case "list":
      return { kind: "list", items: v.items.map((i) => valueNode(file, i, at(file, i.pos))), loc, keyLoc };
    case "object": {
      const entries = new Map<string, TreeNode>();
      for (const e of v.entries) entries.set(e.key, valueNode(file, e.value, at(file, e.keyPos)));
      return { kind: "map", entries, origin: "object", loc, keyLoc };
    }
    case "null":
      return { kind: "scalar", value: null, loc, keyLoc };
    default:
      return { kind: "scalar", value: v.value, loc, keyLoc };
  }
}

function describeOrigin(n: TreeNode): string {
  if (n.kind === "map" && (n.origin === "block" || n.origin === "labels")) return "a block";
  return "an attribute";
}

function bodyNode(file: string, body: HclBody, loc: Loc, origin: "block" | "root"): MapNode {
  const node: MapNode = { kind: "map", entries: new Map(), origin, loc, keyLoc: loc };
  for (const item of body.items) {
    const itemLoc = at(file, item.pos);
    if (item.kind === "attribute") {
      const prev = node.entries.get(item.name);
      // The parser already refuses a repeated attribute; what is left is an attribute after a block.
      if (prev) {
        throw new ConfigError(
          itemLoc,
          `"${item.name}" is already defined as ${describeOrigin(prev)} at ${prev.keyLoc.line}:${prev.keyLoc.col}`,
        );
      }
      node.entries.set(item.name, valueNode(file, item.value, itemLoc));
      continue;
    }
    // A block `type "l1" "l2" { ... }` lands at entries[type][l1][l2]; the intermediate maps are label groups.
    let parent = node;
    const keys = [item.type, ...item.labels.map((l) => l.value)];
    const keyLocs = [itemLoc, ...item.labels.map((l) => at(file, l.pos))];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const keyLoc = keyLocs[i]!;
      const last = i === keys.length - 1;
      const prev = parent.entries.get(key);
      if (last) {
        if (prev) {
          const name = [item.type, ...item.labels.map((l) => JSON.stringify(l.value))].join(" ");
          const first = describeOrigin(prev) === "a block" ? prev.loc : prev.keyLoc;
          const where = `${first.line}:${first.col}`;
          throw new ConfigError(
            itemLoc,
            describeOrigin(prev) === "a block"
              ? `block ${name} is already defined at ${where}`
              : `block ${name}: "${key}" is already defined as an attribute at ${where}`,
          );
        }
        // A labelled block's key is its last label, so that is where an error about the key points.
        parent.entries.set(key, { ...bodyNode(file, item.body, itemLoc, "block"), keyLoc });
      } else if (prev === undefined) {
        const group: MapNode = { kind: "map", entries: new Map(), origin: "labels", loc: itemLoc, keyLoc };
        parent.entries.set(key, group);
        parent = group;
      } else if (prev.kind === "map" && prev.origin === "labels") {
        parent = prev;
      } else {
        throw new ConfigError(
          itemLoc,
          `block ${item.type} has labels here but is already defined without them (as ${describeOrigin(prev)} at ${prev.keyLoc.line}:${prev.keyLoc.col})`,
        );
      }
    }
  }
  return node;
}

/** The tree of one parsed file. */
export function fileTree(f: HclFile): MapNode {
  return bodyNode(f.file, f.body, { file: f.file, line: 1, col: 1 }, "root");
}

/**
 * Merge `over` onto `base` (neither is changed): maps merge key by key, recursively; anything
 * else in `over` (scalars, lists) replaces what `base` had.
 */
export function mergeTrees(base: MapNode, over: MapNode): MapNode {
  const entries = new Map(base.entries);
  for (const [k, v] of over.entries) {
    const prev = entries.get(k);
    entries.set(k, prev?.kind === "map" && v.kind === "map" ? mergeTrees(prev, v) : v);
  }
  return { ...base, entries };
}

/** The plain JavaScript value (objects, arrays, scalars) the schema validates. */
export function treeToPlain(n: TreeNode): unknown {
  switch (n.kind) {
    case "scalar":
      return n.value;
    case "list":
      return n.items.map(treeToPlain);
    case "map": {
      // A null-prototype object so that keys such as "__proto__" stay plain data.
      const o: Record<string, unknown> = Object.create(null);
      for (const [k, v] of n.entries) o[k] = treeToPlain(v);
      return o;
    }
  }
}

/**
 * The node at `path`, or the deepest node on the way there when the path does not exist
 * (`found` says which). Used to put a schema error where the offending value was written.
 */
export function nodeAt(root: MapNode, path: readonly PropertyKey[]): { node: TreeNode; found: boolean } {
  let node: TreeNode = root;
  for (const key of path) {
    let child: TreeNode | undefined;
    if (node.kind === "map" && typeof key === "string") child = node.entries.get(key);
    else if (node.kind === "list" && typeof key === "number") child = node.items[key];
    if (child === undefined) return { node, found: false };
    node = child;
  }
  assert(node !== undefined, "nodeAt ends on a node");
  return { node, found: true };
}

/** `server.server_join.retry_join[1]` */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const k of path) {
    if (typeof k === "number") s += `[${k}]`;
    else s += s === "" ? String(k) : `.${String(k)}`;
  }
  return s;
}

/** How a value found in a file is described in "expected … but found …". */
export function describeNode(n: TreeNode): string {
  switch (n.kind) {
    case "scalar": {
      const v = n.value;
      if (typeof v === "string") return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
      if (typeof v === "number") return `number ${v}`;
      return String(v);
    }
    case "list":
      return "a list";
    case "map":
      return n.origin === "object" ? "an object" : "a block";
  }
}
