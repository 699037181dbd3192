// Joining byte arrays: the one copy loop every layer uses instead of writing its own.

/** A new array holding `parts` one after another (always a copy, so it owns its bytes). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
