// Parser for the HCL subset edgenode reads (agent config files, ACL policy rules): blocks with
// labels, attributes, literal values, lists, objects, heredocs and comments — no expressions.
// Every AST node keeps its line:col; every syntax error is a ConfigError at `file:line:col`.
import { ConfigError } from "./config_error.ts";

/** 1-based line and column (columns count UTF-16 code units; a tab is one column). */
export interface Pos {
  readonly line: number;
  readonly col: number;
}

export type HclValue =
  | { readonly kind: "string"; readonly value: string; readonly pos: Pos }
  | { readonly kind: "number"; readonly value: number; readonly pos: Pos }
  | { readonly kind: "bool"; readonly value: boolean; readonly pos: Pos }
  | { readonly kind: "null"; readonly pos: Pos }
  | { readonly kind: "list"; readonly items: readonly HclValue[]; readonly pos: Pos }
  | { readonly kind: "object"; readonly entries: readonly HclObjectEntry[]; readonly pos: Pos };

export interface HclObjectEntry {
  readonly key: string;
  readonly keyPos: Pos;
  readonly value: HclValue;
}

export interface HclAttribute {
  readonly kind: "attribute";
  readonly name: string;
  /** Position of the attribute's name. */
  readonly pos: Pos;
  readonly value: HclValue;
}

export interface HclLabel {
  readonly value: string;
  readonly pos: Pos;
}

export interface HclBlock {
  readonly kind: "block";
  readonly type: string;
  readonly labels: readonly HclLabel[];
  /** Position of the block's type name. */
  readonly pos: Pos;
  readonly body: HclBody;
}

export interface HclBody {
  readonly items: readonly (HclAttribute | HclBlock)[];
}

export interface HclFile {
  readonly file: string;
  readonly body: HclBody;
}

/** Bounds on what one file may ask of the parser. */
export const HCL_LIMITS = {
  /** Bytes of UTF-8 per file. */
  maxBytes: 1024 * 1024,
  /** Nesting of blocks, lists and objects together. */
  maxDepth: 32,
} as const;

type Tok =
  | { t: "ident"; v: string; pos: Pos }
  | { t: "string"; v: string; pos: Pos; heredoc: boolean }
  | { t: "number"; v: number; raw: string; pos: Pos }
  | { t: "punct"; v: "{" | "}" | "[" | "]" | "=" | "," | ":"; pos: Pos }
  | { t: "eof"; pos: Pos };

const IDENT_START = /[A-Za-z_]/;
const IDENT_CHAR = /[A-Za-z0-9_-]/;
const NUMBER_RE = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const PUNCT = new Set(["{", "}", "[", "]", "=", ",", ":"]);

function clip(s: string, n = 24): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function describe(tok: Tok): string {
  switch (tok.t) {
    case "ident":
      return `"${clip(tok.v)}"`;
    case "string":
      return tok.heredoc ? "a heredoc string" : `string ${JSON.stringify(clip(tok.v))}`;
    case "number":
      return `number ${tok.raw}`;
    case "punct":
      return `"${tok.v}"`;
    case "eof":
      return "end of file";
  }
}

/** Turns source text into tokens on demand; newlines are whitespace in this subset. */
class Lexer {
  private i = 0;
  private line = 1;
  private lineStart = 0;

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {}

  fail(pos: Pos, what: string): never {
    throw new ConfigError({ file: this.file, line: pos.line, col: pos.col }, what);
  }

  private pos(): Pos {
    return { line: this.line, col: this.i - this.lineStart + 1 };
  }

  /** Advance one character, keeping line/column bookkeeping. */
  private step(): void {
    if (this.src.charCodeAt(this.i) === 10) {
      this.line++;
      this.lineStart = this.i + 1;
    }
    this.i++;
  }

  private skipSpaceAndComments(): void {
    const s = this.src;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === " " || c === "\t" || c === "\n" || c === "\r") {
        this.step();
      } else if (c === "#" || (c === "/" && s[this.i + 1] === "/")) {
        while (this.i < s.length && s[this.i] !== "\n") this.i++;
      } else if (c === "/" && s[this.i + 1] === "*") {
        const start = this.pos();
        this.i += 2;
        while (this.i < s.length && !(s[this.i] === "*" && s[this.i + 1] === "/")) this.step();
        if (this.i >= s.length) this.fail(start, `unterminated comment: expected "*/" to close the "/*" but found end of file`);
        this.i += 2;
      } else {
        return;
      }
    }
  }

  next(): Tok {
    this.skipSpaceAndComments();
    const s = this.src;
    const pos = this.pos();
    if (this.i >= s.length) return { t: "eof", pos };
    const c = s[this.i]!;
    if (c === '"') return this.quoted(pos);
    if (c === "<" && s[this.i + 1] === "<") return this.heredoc(pos);
    if (PUNCT.has(c)) {
      this.i++;
      return { t: "punct", v: c as "{", pos };
    }
    if (c === "-" || (c >= "0" && c <= "9")) return this.number(pos);
    if (IDENT_START.test(c)) {
      const start = this.i;
      while (this.i < s.length && IDENT_CHAR.test(s[this.i]!)) this.i++;
      return { t: "ident", v: s.slice(start, this.i), pos };
    }
    const cp = String.fromCodePoint(s.codePointAt(this.i)!);
    this.fail(pos, `unexpected character ${JSON.stringify(cp)}`);
  }

  private number(pos: Pos): Tok {
    const s = this.src;
    const start = this.i;
    if (s[this.i] === "-") this.i++;
    NUMBER_RE.lastIndex = this.i;
    const m = NUMBER_RE.exec(s);
    if (!m) this.fail(pos, `expected a number after "-" but found ${this.i < s.length ? JSON.stringify(s[this.i]) : "end of file"}`);
    this.i += m[0].length;
    // "15s" or "64KiB" written without quotes is the mistake this catches; say how to fix it.
    if (this.i < s.length && (IDENT_CHAR.test(s[this.i]!) || s[this.i] === ".")) {
      let end = this.i;
      while (end < s.length && (IDENT_CHAR.test(s[end]!) || s[end] === ".")) end++;
      const word = s.slice(start, end);
      this.fail(pos, `expected a number but found ${JSON.stringify(clip(word))} (durations and sizes are quoted strings, e.g. "15s")`);
    }
    const raw = s.slice(start, this.i);
    const v = Number(raw);
    if (!Number.isFinite(v)) this.fail(pos, `number ${clip(raw)} is out of range`);
    return { t: "number", v, raw, pos };
  }

  private quoted(pos: Pos): Tok {
    const s = this.src;
    this.i++; // opening quote
    let out = "";
    for (;;) {
      if (this.i >= s.length || s[this.i] === "\n") {
        this.fail(
          pos,
          `unterminated string: expected a closing '"' before the end of the line (use a heredoc for text over several lines)`,
        );
      }
      const c = s[this.i]!;
      if (c === '"') {
        this.i++;
        return { t: "string", v: out, pos, heredoc: false };
      }
      if (c === "\\") {
        out += this.escape();
        continue;
      }
      if ((c === "$" || c === "%") && s[this.i + 1] === "{") {
        this.fail(this.pos(), `template sequence "${c}{" is not supported (write "${c}${c}{" for a literal "${c}{")`);
      }
      if ((c === "$" || c === "%") && s[this.i + 1] === c && s[this.i + 2] === "{") {
        out += `${c}{`;
        this.i += 3;
        continue;
      }
      out += c;
      this.i++;
    }
  }

  private escape(): string {
    const s = this.src;
    const at = this.pos();
    const e = s[this.i + 1];
    const simple: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };
    if (e !== undefined && simple[e] !== undefined) {
      this.i += 2;
      return simple[e];
    }
    if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const hex = s.slice(this.i + 2, this.i + 2 + n);
      if (hex.length !== n || !/^[0-9A-Fa-f]+$/.test(hex)) {
        this.fail(at, `invalid escape: expected ${n} hex digits after "\\${e}" but found ${JSON.stringify(hex)}`);
      }
      const cp = Number.parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(at, `invalid escape: "\\${e}${hex}" is not a Unicode scalar value`);
      this.i += 2 + n;
      return String.fromCodePoint(cp);
    }
    const shown = e === undefined || e === "\n" ? "end of line" : JSON.stringify(`\\${e}`);
    this.fail(at, `invalid escape: expected one of \\n \\r \\t \\" \\\\ \\uXXXX \\UXXXXXXXX but found ${shown}`);
  }

  private heredoc(pos: Pos): Tok {
    const s = this.src;
    this.i += 2;
    const indented = s[this.i] === "-";
    if (indented) this.i++;
    const mstart = this.i;
    if (this.i < s.length && IDENT_START.test(s[this.i]!)) {
      while (this.i < s.length && IDENT_CHAR.test(s[this.i]!)) this.i++;
    }
    const marker = s.slice(mstart, this.i);
    if (marker.length === 0) this.fail(this.pos(), `expected a heredoc marker such as "EOF" after "<<"`);
    while (s[this.i] === " " || s[this.i] === "\t" || s[this.i] === "\r") this.i++;
    if (this.i < s.length && s[this.i] !== "\n") {
      this.fail(this.pos(), `expected a newline after the heredoc marker "${clip(marker)}" but found ${JSON.stringify(s[this.i])}`);
    }
    const lines: string[] = [];
    for (;;) {
      if (this.i >= s.length) this.fail(pos, `unterminated heredoc: expected a line "${clip(marker)}" to close it but found end of file`);
      this.step(); // the newline ending the previous line
      let end = s.indexOf("\n", this.i);
      if (end < 0) end = s.length;
      const text = s.slice(this.i, end);
      if (text.trim() === marker) {
        this.i = end;
        break;
      }
      lines.push(text);
      this.i = end;
    }
    let body = lines;
    if (indented) {
      let common = Number.POSITIVE_INFINITY;
      for (const l of lines) {
        if (l.trim() === "") continue;
        common = Math.min(common, /^[ \t]*/.exec(l)![0].length);
      }
      if (common === Number.POSITIVE_INFINITY) common = 0;
      body = lines.map((l) => l.slice(Math.min(common, /^[ \t]*/.exec(l)![0].length)));
    }
    const text = body.map((l) => `${l}\n`).join("");
    return {
      t: "string",
      v: unescapeTemplate(text, (col) =>
        this.fail(pos, `template sequence "${col}{" is not supported in a heredoc (write "${col}${col}{" for a literal "${col}{")`),
      ),
      pos,
      heredoc: true,
    };
  }
}

/** Heredocs take no backslash escapes, but "$${" and "%%{" still stand for literal "${" and "%{". */
function unescapeTemplate(text: string, reject: (c: string) => never): string {
  if (!text.includes("{")) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ((c === "$" || c === "%") && text[i + 1] === c && text[i + 2] === "{") {
      out += `${c}{`;
      i += 2;
    } else if ((c === "$" || c === "%") && text[i + 1] === "{") {
      reject(c);
    } else {
      out += c;
    }
  }
  return out;
}

class Parser {
  private tok: Tok;
  private readonly lex: Lexer;

  constructor(
    src: string,
    private readonly file: string,
  ) {
    this.lex = new Lexer(src, file);
    this.tok = this.lex.next();
  }

  private advance(): Tok {
    const t = this.tok;
    this.tok = this.lex.next();
    return t;
  }

  private isPunct(v: string): boolean {
    return this.tok.t === "punct" && this.tok.v === v;
  }

  private expected(what: string): never {
    this.lex.fail(this.tok.pos, `expected ${what} but found ${describe(this.tok)}`);
  }

  private checkDepth(depth: number, pos: Pos): void {
    if (depth > HCL_LIMITS.maxDepth) this.lex.fail(pos, `nesting is deeper than ${HCL_LIMITS.maxDepth} levels`);
  }

  parseFile(): HclFile {
    return { file: this.file, body: this.body(0, undefined) };
  }

  /** A body runs to "}" (when `open` is the block's position) or to end of file. */
  private body(depth: number, open: Pos | undefined): HclBody {
    const items: (HclAttribute | HclBlock)[] = [];
    const seen = new Map<string, Pos>();
    for (;;) {
      const tok = this.tok;
      if (open && tok.t === "punct" && tok.v === "}") {
        this.advance();
        return { items };
      }
      if (tok.t === "eof") {
        if (!open) return { items };
        this.expected(`"}" to close the block opened at ${open.line}:${open.col}`);
      }
      if (tok.t !== "ident") this.expected(open ? `an attribute name, a block or "}"` : "an attribute name or a block");
      this.advance();
      if (this.isPunct("=")) {
        const first = seen.get(tok.v);
        if (first) this.lex.fail(tok.pos, `attribute "${clip(tok.v)}" is already set at ${first.line}:${first.col}`);
        seen.set(tok.v, tok.pos);
        this.advance();
        items.push({ kind: "attribute", name: tok.v, pos: tok.pos, value: this.value(depth + 1) });
        continue;
      }
      const labels: HclLabel[] = [];
      // Labels are quoted strings only: a bare word here is far more often a missing "{" or "=".
      while (this.tok.t === "string" && !this.tok.heredoc) {
        labels.push({ value: this.tok.v, pos: this.tok.pos });
        this.advance();
      }
      if (!this.isPunct("{")) {
        if (labels.length === 0) this.expected(`"=" or "{" after "${clip(tok.v)}"`);
        this.expected(`a block label or "{"`);
      }
      const brace = this.advance().pos;
      this.checkDepth(depth + 1, brace);
      items.push({ kind: "block", type: tok.v, labels, pos: tok.pos, body: this.body(depth + 1, tok.pos) });
    }
  }

  private value(depth: number): HclValue {
    const tok = this.tok;
    this.checkDepth(depth, tok.pos);
    switch (tok.t) {
      case "string":
        this.advance();
        return { kind: "string", value: tok.v, pos: tok.pos };
      case "number":
        this.advance();
        return { kind: "number", value: tok.v, pos: tok.pos };
      case "ident":
        if (tok.v === "true" || tok.v === "false") {
          this.advance();
          return { kind: "bool", value: tok.v === "true", pos: tok.pos };
        }
        if (tok.v === "null") {
          this.advance();
          return { kind: "null", pos: tok.pos };
        }
        return this.expected("a value (variables and expressions are not supported)");
      case "punct":
        if (tok.v === "[") return this.list(depth);
        if (tok.v === "{") return this.object(depth);
        return this.expected("a value");
      case "eof":
        return this.expected("a value");
    }
  }

  private list(depth: number): HclValue {
    const pos = this.advance().pos;
    const items: HclValue[] = [];
    for (;;) {
      if (this.isPunct("]")) break;
      items.push(this.value(depth + 1));
      if (this.isPunct(",")) {
        this.advance();
        continue;
      }
      if (!this.isPunct("]")) this.expected(`"," or "]" to continue the list opened at ${pos.line}:${pos.col}`);
    }
    this.advance();
    return { kind: "list", items, pos };
  }

  private object(depth: number): HclValue {
    const pos = this.advance().pos;
    const entries: HclObjectEntry[] = [];
    const seen = new Map<string, Pos>();
    for (;;) {
      if (this.isPunct("}")) break;
      const k = this.tok;
      if (k.t !== "ident" && !(k.t === "string" && !k.heredoc)) {
        this.expected(`an object key or "}" to close the object opened at ${pos.line}:${pos.col}`);
      }
      this.advance();
      if (!this.isPunct("=") && !this.isPunct(":")) this.expected(`"=" after the key "${clip(k.v)}"`);
      this.advance();
      const first = seen.get(k.v);
      if (first) this.lex.fail(k.pos, `key "${clip(k.v)}" is already set at ${first.line}:${first.col}`);
      seen.set(k.v, k.pos);
      entries.push({ key: k.v, keyPos: k.pos, value: this.value(depth + 1) });
      // Entries are separated by commas or just by newlines / spaces, as the config examples write them.
      if (this.isPunct(",")) this.advance();
    }
    this.advance();
    return { kind: "object", entries, pos };
  }
}

/** Parse one file's text. `file` names it in error messages. */
export function parseHcl(text: string, file: string): HclFile {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > HCL_LIMITS.maxBytes) {
    throw new ConfigError({ file, line: 1, col: 1 }, `file is ${bytes} bytes; the limit is ${HCL_LIMITS.maxBytes}`);
  }
  let src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  // CRLF files: drop the CR so heredoc lines and positions match what an editor shows.
  if (src.includes("\r\n")) src = src.replaceAll("\r\n", "\n");
  return new Parser(src, file).parseFile();
}
