// The size a compressed block declares, read from its zstd frame header without decompressing.
// Bun's one-shot zstdDecompress is faster than node:zlib's (which inflates into 16 KiB pieces and
// concatenates them, faulting in twice the memory; test/bench/RESULTS.md) but takes no output bound: it decompresses
// every frame it finds and grows its buffer to fit. A block is therefore decompressed natively only
// when it is exactly one frame that declares its content size: zstd then refuses output that
// differs from that size, so a block can never inflate past what it declares (RFC 8878 §3.1.1).

const MAGIC = 0xfd2fb528;
const BLOCK_HEADER_BYTES = 3;
const CHECKSUM_BYTES = 4;

/**
 * The content size of `b` if it is exactly one zstd frame (no dictionary, no trailing bytes) whose
 * header carries its content size; undefined otherwise (several frames, skippable frames, an unknown
 * size, a truncated or malformed frame).
 */
export function zstdFrameContentSize(b: Uint8Array): number | undefined {
  if (b.length < 6) return undefined;
  const magic = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  if (magic !== MAGIC) return undefined;
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const reserved = (fhd >> 3) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  if (reserved !== 0 || dictFlag !== 0) return undefined;
  let pos = 5;
  if (singleSegment === 0) pos += 1; // window descriptor
  const fcsBytes = [singleSegment, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return undefined; // size not declared
  if (pos + fcsBytes > b.length) return undefined;
  let size: number;
  if (fcsBytes === 1) size = b[pos]!;
  else if (fcsBytes === 2) size = (b[pos]! | (b[pos + 1]! << 8)) + 256;
  else {
    size = (b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16) | (b[pos + 3]! << 24)) >>> 0;
    if (fcsBytes === 8 && (b[pos + 4]! | b[pos + 5]! | b[pos + 6]! | b[pos + 7]!) !== 0) return undefined; // ≥ 4 GiB
  }
  pos += fcsBytes;
  // Walk the blocks to the last one: the frame must end exactly where the input does.
  for (;;) {
    if (pos + BLOCK_HEADER_BYTES > b.length) return undefined;
    const h = b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16);
    pos += BLOCK_HEADER_BYTES;
    const last = h & 1;
    const type = (h >> 1) & 3;
    const blockSize = h >>> 3;
    if (type === 3) return undefined; // reserved
    pos += type === 1 ? 1 : blockSize; // an RLE block stores one byte
    if (pos > b.length) return undefined;
    if (last) break;
  }
  if (checksum) pos += CHECKSUM_BYTES;
  return pos === b.length ? size : undefined;
}
