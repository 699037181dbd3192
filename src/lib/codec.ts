// The one cbor-x configuration shared by RPC frames, log entries and snapshot
// records (DESIGN property 6). Standard CBOR only: no record extension, no
// typed-array tags, so a Go peer decodes what we encode. Every decode is strict:
// input is checked first (lib/cbor_check.ts) and anything the encoder never writes
// is refused with BAD_REQUEST, so no input can make decoding slow.
import { Decoder, Encoder } from "cbor-x";
import { checkCbor } from "./cbor_check.ts";
import { MAX_CBOR_DEPTH } from "./limits.ts";

const options = { useRecords: false, tagUint8Array: false, mapsAsObjects: true } as const;

const encoder = new Encoder(options);
const decoder = new Decoder(options);
// Byte strings copied out, so the decoded values never point into the source and it can be released.
const copyingDecoder = new Decoder({ ...options, copyBuffers: true });

export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decoded byte strings are views into `bytes`; copy them if `bytes` is reused. */
export function decode(bytes: Uint8Array): unknown {
  checkCbor(bytes, MAX_CBOR_DEPTH, false);
  return decoder.decode(bytes);
}

/** decode, with byte strings (and typed arrays) copied out: nothing decoded refers to `bytes`. */
export function decodeCopying(bytes: Uint8Array): unknown {
  checkCbor(bytes, MAX_CBOR_DEPTH, false);
  return copyingDecoder.decode(bytes);
}

/**
 * Decode every CBOR item in `bytes` (a concatenated sequence). Byte strings (and typed arrays) are
 * copies: nothing decoded refers to `bytes`, which the caller may release or reuse at once.
 */
export function decodeMultiple(bytes: Uint8Array): unknown[] {
  checkCbor(bytes, MAX_CBOR_DEPTH, true);
  const out: unknown[] = [];
  copyingDecoder.decodeMultiple(bytes, (v: unknown) => {
    out.push(v);
  });
  return out;
}
