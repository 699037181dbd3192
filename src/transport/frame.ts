// The yamux frame header (hashicorp/yamux spec.md): 12 bytes, big-endian,
// version 0, type, flags, stream id, length. Pure encode/decode, no I/O.
import { TransportError } from "./transport_error.ts";

export const HEADER_SIZE = 12;
export const PROTO_VERSION = 0;

export const FrameType = { Data: 0, WindowUpdate: 1, Ping: 2, GoAway: 3 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const Flag = { SYN: 0x1, ACK: 0x2, FIN: 0x4, RST: 0x8 } as const;
const ALL_FLAGS = Flag.SYN | Flag.ACK | Flag.FIN | Flag.RST;

export const GoAwayCode = { Normal: 0, ProtocolError: 1, InternalError: 2 } as const;

/** The initial per-stream window every yamux peer assumes. */
export const INITIAL_WINDOW = 256 * 1024;

export interface FrameHeader {
  version: number;
  type: FrameType;
  flags: number;
  streamId: number;
  length: number;
}

export class ProtocolError extends TransportError {
  constructor(message: string) {
    super("PROTOCOL_ERROR", message);
    this.name = "ProtocolError";
  }
}

export function encodeHeader(
  type: FrameType,
  flags: number,
  streamId: number,
  length: number,
  out: Uint8Array = new Uint8Array(HEADER_SIZE),
  at = 0,
): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + at, HEADER_SIZE);
  v.setUint8(0, PROTO_VERSION);
  v.setUint8(1, type);
  v.setUint16(2, flags);
  v.setUint32(4, streamId >>> 0);
  v.setUint32(8, length >>> 0);
  return out;
}

/** Decode and validate a header; throws ProtocolError for anything the spec does not allow. */
export function decodeHeader(b: Uint8Array, at = 0): FrameHeader {
  const v = new DataView(b.buffer, b.byteOffset + at, HEADER_SIZE);
  const version = v.getUint8(0);
  const type = v.getUint8(1);
  const flags = v.getUint16(2);
  const streamId = v.getUint32(4);
  const length = v.getUint32(8);
  if (version !== PROTO_VERSION) throw new ProtocolError(`unsupported yamux version ${version}`);
  if (type > FrameType.GoAway) throw new ProtocolError(`unknown frame type ${type}`);
  if ((flags & ~ALL_FLAGS) !== 0) throw new ProtocolError(`unknown flags 0x${flags.toString(16)}`);
  if ((type === FrameType.Ping || type === FrameType.GoAway) && streamId !== 0) {
    throw new ProtocolError(`${type === FrameType.Ping ? "ping" : "go away"} on stream ${streamId}`);
  }
  if ((type === FrameType.Data || type === FrameType.WindowUpdate) && streamId === 0) {
    throw new ProtocolError("stream frame on stream 0");
  }
  return { version, type: type as FrameType, flags, streamId, length };
}
