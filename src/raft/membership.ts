// Membership: the one-at-a-time configuration changes, how a change entry is
// encoded (it carries the whole resulting configuration, so a server replaying
// the log from any point learns the full membership), and quorum arithmetic.
import { assert } from "../lib/assert.ts";
import { decode, encode } from "../lib/codec.ts";
import { ConfChangeError } from "./errors.ts";
import type { Configuration, NodeId, ServerInfo } from "./storage.ts";

export type ConfChange =
  | { type: "addVoter"; id: NodeId; address: string }
  | { type: "addNonvoter"; id: NodeId; address: string }
  | { type: "promote"; id: NodeId }
  | { type: "remove"; id: NodeId };

/** Payload of an EntryType.ConfChange entry. */
export interface ConfChangeRecord {
  change: ConfChange;
  /** The configuration after the change. */
  config: Configuration;
}

export const MAX_SERVERS = 64;

export function cloneConfig(c: Configuration): Configuration {
  return { servers: c.servers.map((s) => ({ ...s })) };
}

/** The configuration after `cc`, or a ConfChangeError when `cc` does not fit `config`. */
export function applyChange(config: Configuration, cc: ConfChange): Configuration {
  const servers: ServerInfo[] = config.servers.map((s) => ({ ...s }));
  const at = servers.findIndex((s) => s.id === cc.id);
  if (typeof cc.id !== "string" || cc.id.length === 0 || cc.id.length > 256) {
    throw new ConfChangeError("invalid server id");
  }
  switch (cc.type) {
    case "addVoter":
    case "addNonvoter": {
      const voter = cc.type === "addVoter";
      if (at >= 0) {
        const cur = servers[at]!;
        if (cur.voter === voter && cur.address === cc.address) throw new ConfChangeError(`${cc.id} is already in the configuration`);
        if (cur.voter && !voter) throw new ConfChangeError(`${cc.id} is a voter; remove it first`);
        servers[at] = { id: cc.id, address: cc.address, voter: voter || cur.voter };
      } else {
        if (servers.length >= MAX_SERVERS) throw new ConfChangeError(`at most ${MAX_SERVERS} servers`);
        servers.push({ id: cc.id, address: cc.address, voter });
      }
      break;
    }
    case "promote": {
      if (at < 0) throw new ConfChangeError(`${cc.id} is not in the configuration`);
      if (servers[at]!.voter) throw new ConfChangeError(`${cc.id} is already a voter`);
      servers[at]!.voter = true;
      break;
    }
    case "remove": {
      if (at < 0) throw new ConfChangeError(`${cc.id} is not in the configuration`);
      servers.splice(at, 1);
      break;
    }
  }
  if (!servers.some((s) => s.voter)) throw new ConfChangeError("the configuration would have no voter");
  return { servers };
}

export function encodeConfChange(rec: ConfChangeRecord): Uint8Array {
  return encode(rec);
}

export function decodeConfChange(data: Uint8Array): ConfChangeRecord {
  const v = decode(data) as Partial<ConfChangeRecord> | null;
  assert(v !== null && typeof v === "object" && v.config && Array.isArray(v.config.servers) && v.change, "malformed conf change entry");
  return { change: v.change, config: cloneConfig(v.config) };
}

export function voters(c: Configuration): NodeId[] {
  return c.servers.filter((s) => s.voter).map((s) => s.id);
}

export function isVoter(c: Configuration, id: NodeId): boolean {
  return c.servers.some((s) => s.id === id && s.voter);
}

export function quorum(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The largest index replicated on a quorum of voters, given each voter's match index. */
export function committedIndex(c: Configuration, match: (id: NodeId) => number): number {
  const ms = voters(c).map(match);
  if (ms.length === 0) return 0;
  ms.sort((a, b) => b - a);
  return ms[quorum(ms.length) - 1]!;
}
