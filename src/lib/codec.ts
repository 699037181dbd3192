// The one cbor-x configuration shared by RPC frames, log entries and snapshot
// records (DESIGN property 6). Standard CBOR only: no record extension, no
// typed-array tags, so a Go peer decodes what we encode.
import { Decoder, Encoder } from "cbor-x";

const options = { useRecords: false, tagUint8Array: false, mapsAsObjects: true } as const;

const encoder = new Encoder(options);
const decoder = new Decoder(options);

export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decoded byte strings are views into `bytes`; copy them if `bytes` is reused. */
export function decode(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

/** Decode every CBOR item in `bytes` (a concatenated sequence). */
export function decodeMultiple(bytes: Uint8Array): unknown[] {
  const out: unknown[] = [];
  decoder.decodeMultiple(bytes, (v: unknown) => {
    out.push(v);
  });
  return out;
}
