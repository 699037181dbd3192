// A linear walk over CBOR item heads that refuses, before cbor-x decodes anything, what the project's
// own encoder never writes: tags (bignums, shared references, typed arrays, sets, records, regexps,
// errors, dates), indefinite lengths, simple values other than false/true/null/undefined, and nesting
// deeper than a bound. What is left decodes in time linear in its size and without deep recursion.
import { EdgeError } from "./errors.ts";

/**
 * Tags the decoder accepts. lib/codec's encoder writes none for the values the project stores and
 * sends (plain objects, arrays, strings, numbers, 64-bit bigints, Uint8Array untagged); a test
 * encodes each kind of value and checks.
 */
const ALLOWED_TAGS: ReadonlySet<number> = new Set();

function refuse(what: string, at: number): never {
  throw new EdgeError("BAD_REQUEST", `refused CBOR: ${what} at byte ${at}`);
}

let remaining = new Int32Array(65);

/**
 * Throws BAD_REQUEST at the first refused head. `sequence` checks every item of a concatenation, else
 * only the first. A truncated item is left for cbor-x to report (everything before it was checked).
 */
export function checkCbor(b: Uint8Array, maxDepth: number, sequence: boolean): void {
  if (remaining.length < maxDepth + 1) remaining = new Int32Array(maxDepth + 1);
  const stack = remaining;
  const end = b.length;
  let depth = 0;
  // Counts are clamped to the bytes left (every item takes at least one), so they fit an Int32Array.
  stack[0] = sequence ? 0x7fffffff : 1;
  let pos = 0;
  while (pos < end) {
    while (stack[depth] === 0) {
      if (depth === 0) return;
      depth--;
    }
    stack[depth]!--;
    const at = pos;
    const ib = b[pos++]!;
    const major = ib >> 5;
    const info = ib & 31;
    let arg: number;
    if (info < 24) arg = info;
    else if (info === 24) {
      if (pos + 1 > end) return;
      arg = b[pos]!;
      pos += 1;
    } else if (info === 25) {
      if (pos + 2 > end) return;
      arg = (b[pos]! << 8) | b[pos + 1]!;
      pos += 2;
    } else if (info === 26) {
      if (pos + 4 > end) return;
      arg = b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
      pos += 4;
    } else if (info === 27) {
      if (pos + 8 > end) return;
      const hi = b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
      const lo = b[pos + 4]! * 0x1000000 + ((b[pos + 5]! << 16) | (b[pos + 6]! << 8) | b[pos + 7]!);
      // Only integers and doubles use all 64 bits; a length or tag number that large is refused below.
      arg = hi > 0 ? Infinity : lo;
      pos += 8;
    } else if (info === 31) refuse(major === 7 ? "a break outside an indefinite-length item" : "an indefinite length", at);
    else refuse(`reserved additional information ${info}`, at);
    switch (major) {
      case 0:
      case 1:
        break;
      case 2:
      case 3:
        if (arg > end - pos) return;
        pos += arg;
        break;
      case 4:
      case 5:
        if (arg === 0) break;
        if (depth + 1 > maxDepth) refuse(`nesting deeper than ${maxDepth}`, at);
        stack[++depth] = Math.min(major === 4 ? arg : arg * 2, end - pos + 1);
        break;
      case 6:
        if (!ALLOWED_TAGS.has(arg)) refuse(`tag ${arg === Infinity ? "over 2^32" : arg}`, at);
        // An allowed tag wraps one item at the same depth.
        stack[depth]!++;
        break;
      default:
        // Major 7: false, true, null, undefined, and floats (info 25-27) only.
        if (info < 24 && (info < 20 || info > 23)) refuse(`simple value ${info}`, at);
        if (info === 24) refuse(`simple value ${arg}`, at);
    }
  }
}
