// The cluster key ring (`server { encrypt = ... }`): 32-byte keys, the first used to dial, every one
// accepted, so a new key can be rolled out server by server. Replaced whole on SIGHUP.
import { badRequest } from "../lib/errors.ts";
import { createHash, randomBytes } from "node:crypto";

export const CLUSTER_KEY_BYTES = 32;
/** Bytes of SHA-256(key) a dialler names its key by, so the acceptor picks the key from its ring. */
export const KEY_ID_BYTES = 8;

/** Exactly 32 bytes of standard base64 (44 characters, one "=" of padding). */
const KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

export function isClusterKey(s: string): boolean {
  return KEY_RE.test(s) && Buffer.from(s, "base64").length === CLUSTER_KEY_BYTES;
}

export function decodeClusterKey(s: string): Uint8Array {
  if (!isClusterKey(s))
    throw badRequest(`a cluster key is ${CLUSTER_KEY_BYTES} bytes in base64 (44 characters, as \`node operator keygen\` prints)`);
  return new Uint8Array(Buffer.from(s, "base64"));
}

/** A new key, as `node operator keygen` prints it. */
export function generateClusterKey(): string {
  return randomBytes(CLUSTER_KEY_BYTES).toString("base64");
}

export function keyId(key: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(key).digest().subarray(0, KEY_ID_BYTES));
}

interface Entry {
  key: Uint8Array;
  id: Uint8Array;
}

export class ClusterKeys {
  private entries: Entry[] = [];

  constructor(keys: readonly string[]) {
    this.set(keys);
  }

  /** Replace the ring (SIGHUP). Sessions already open stay open: they proved a key that was good then. */
  set(keys: readonly string[]): void {
    if (keys.length === 0) throw badRequest("a cluster key ring needs at least one key");
    this.entries = keys.map((k) => {
      const key = decodeClusterKey(k);
      return { key, id: keyId(key) };
    });
  }

  /** The key this server dials with. */
  get primary(): Entry {
    return this.entries[0]!;
  }

  /** The key a dialler named by its id, if this ring holds it. */
  find(id: Uint8Array): Uint8Array | undefined {
    for (const e of this.entries) if (Buffer.compare(e.id, id) === 0) return e.key;
    return undefined;
  }

  /** Whether the key of this id (hex, as PeerIdentity carries it) is still in the ring. */
  holds(idHex: string): boolean {
    return this.entries.some((e) => Buffer.from(e.id).toString("hex") === idHex);
  }

  get size(): number {
    return this.entries.length;
  }
}
