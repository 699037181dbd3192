// Seeded snapshot fixtures for the snapshot tests and bench: a header, records of ~1 KiB variables
// across several tables, and helpers to collect a stream and to forge files frame by frame.

import { encode } from "../../src/lib/codec.ts";
import {
  FORMAT_VERSION,
  FrameKind,
  encodeFrameHeader,
  encodePreamble,
  type SnapshotHeader,
  type SnapshotRecord,
} from "../../src/snapshot/format.ts";
import type { WriterHeader } from "../../src/snapshot/writer.ts";
import { mulberry32 } from "../support/mulberry32.ts";

export const rng = mulberry32;

export function header(counts: Record<string, number>, over: Partial<WriterHeader> = {}): WriterHeader {
  return {
    producer: "0.1.0-test",
    region: "global",
    clusterId: "6f1c2a9e-0000-4000-8000-000000000001",
    snapshotId: "2-19-1592495928936",
    index: 19,
    term: 2,
    created: "2026-01-02T03:04:05Z",
    counts,
    config: { servers: [{ id: "a", address: "127.0.0.1:4647", voter: true }] },
    ...over,
  };
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** A pool of random text to slice values from: generating 1 KiB of randomness per record would dominate. */
export function textPool(seed: number, bytes = 1 << 20): string {
  const r = rng(seed);
  const codes = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) codes[i] = ALPHABET.charCodeAt(Math.floor(r() * 64));
  return Buffer.from(codes.buffer).toString("latin1");
}

/** A variable of about `size` bytes once encoded, shaped like the state machine's. */
export function variable(i: number, pool: string, size = 1024): unknown {
  const len = Math.max(16, size - 120);
  const start = (i * 7919) % (pool.length - len);
  return {
    Namespace: "default",
    Path: `app/service-${i % 1000}/config-${i}`,
    Items: { data: pool.slice(start, start + len) },
    CreateIndex: i + 1,
    ModifyIndex: i + 5,
  };
}

/** `n` variables followed by a few ACL records, with the header counts that match. */
export function variableRecords(
  n: number,
  pool: string,
  size = 1024,
): { counts: Record<string, number>; records: () => Generator<SnapshotRecord> } {
  const acl = Math.min(n, 10);
  return {
    counts: { vars: n, acl_tokens: acl },
    records: function* () {
      for (let i = 0; i < n; i++) yield { t: "vars", v: variable(i, pool, size) };
      for (let i = 0; i < acl; i++)
        yield { t: "acl_tokens", v: { AccessorID: `acc-${i}`, SecretID: `sec-${i}`, Type: "client", Policies: ["p"] } };
    },
  };
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/** Feed `bytes` as chunks of seeded random sizes (1 B .. maxChunk), so parsing crosses chunk boundaries. */
export async function* chunked(bytes: Uint8Array, seed: number, maxChunk = 256 * 1024): AsyncGenerator<Uint8Array> {
  const r = rng(seed);
  let at = 0;
  while (at < bytes.length) {
    const n = 1 + Math.floor(r() * maxChunk);
    yield bytes.slice(at, at + n);
    at += n;
  }
}

export interface Frame {
  kind: FrameKind;
  payload: Uint8Array;
  raw?: number;
}

/** Build a file from chosen frames with every checksum valid, to reach checks behind the checksums. */
export function forge(frames: Frame[], version = FORMAT_VERSION): Uint8Array {
  const parts: Uint8Array[] = [encodePreamble(version)];
  for (const f of frames) parts.push(encodeFrameHeader(f.kind, f.payload, f.raw ?? f.payload.length), f.payload);
  const body = new Uint8Array(Buffer.concat(parts));
  const sha = new Bun.CryptoHasher("sha256").update(body).digest();
  return new Uint8Array(Buffer.concat([body, sha]));
}

export function headerFrame(h: SnapshotHeader | Record<string, unknown>): Frame {
  return { kind: FrameKind.Header, payload: encode(h) };
}
