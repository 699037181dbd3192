// The messages raft servers exchange, as plain objects of numbers, strings and
// Uint8Array so the transport can CBOR-encode them as they are, plus the shape
// check that lets step() drop garbage from a peer instead of throwing.
import type { Entry, NodeId, SnapshotMeta } from "./storage.ts";

export const MESSAGE_TYPES = [
  "app", // AppendEntries: index/logTerm = previous entry, entries, commit
  "appResp", // index = last matching index, or the rejected index with rejectHint/logTerm as conflict hint
  "heartbeat", // commit (bounded by the follower's match), context = read round id or ""
  "heartbeatResp",
  "vote", // index/logTerm = candidate's last entry; context "transfer" bypasses the leader lease
  "voteResp",
  "preVote",
  "preVoteResp",
  "snap", // leader -> driver: stream the current snapshot to `to`; driver -> receiver core once fully received
  "timeoutNow", // leadership transfer: campaign now
  "readIndex", // follower -> leader: context = the follower's read ctx
  "readIndexResp", // leader -> follower: index = read index ("reject" when the leader cannot serve it)
  "transferLeader", // follower -> leader: context = transferee id
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  commit: number;
  entries: Entry[];
  reject: boolean;
  rejectHint: number;
  context: string;
  snapshot?: SnapshotMeta;
}

export function message(fields: Pick<Message, "type" | "from" | "to" | "term"> & Partial<Message>): Message {
  return {
    logTerm: 0,
    index: 0,
    commit: 0,
    entries: [],
    reject: false,
    rejectHint: 0,
    context: "",
    ...fields,
  };
}

const TYPE_SET: ReadonlySet<string> = new Set(MESSAGE_TYPES);
/** Limits on fields a peer controls; far above anything a healthy peer sends. */
export const MAX_ENTRIES_PER_MESSAGE = 1 << 16;
export const MAX_CONTEXT_LENGTH = 1024;

const isIndex = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/** True when `m` has the shape of a Message with sane numbers. It does not judge protocol validity. */
export function isWellFormed(m: unknown): m is Message {
  if (m === null || typeof m !== "object") return false;
  const o = m as Record<string, unknown>;
  if (typeof o.type !== "string" || !TYPE_SET.has(o.type)) return false;
  if (typeof o.from !== "string" || typeof o.to !== "string" || o.from.length === 0) return false;
  if (!isIndex(o.term) || !isIndex(o.logTerm) || !isIndex(o.index) || !isIndex(o.commit)) return false;
  if (!isIndex(o.rejectHint) || typeof o.reject !== "boolean") return false;
  if (typeof o.context !== "string" || o.context.length > MAX_CONTEXT_LENGTH) return false;
  if (!Array.isArray(o.entries) || o.entries.length > MAX_ENTRIES_PER_MESSAGE) return false;
  let prev = o.index;
  for (const e of o.entries as unknown[]) {
    if (e === null || typeof e !== "object") return false;
    const x = e as Record<string, unknown>;
    if (!isIndex(x.index) || !isIndex(x.term) || !(x.data instanceof Uint8Array)) return false;
    if (x.type !== 0 && x.type !== 1) return false;
    // Entries in an append must be contiguous after the previous index.
    if (x.index !== prev + 1) return false;
    prev = x.index;
  }
  if (o.snapshot !== undefined) {
    const s = o.snapshot as Record<string, unknown> | null;
    if (s === null || typeof s !== "object" || !isIndex(s.index) || !isIndex(s.term)) return false;
    const c = s.config as Record<string, unknown> | null;
    if (c === null || typeof c !== "object" || !Array.isArray(c.servers)) return false;
    for (const sv of c.servers as unknown[]) {
      const v = sv as Record<string, unknown> | null;
      if (v === null || typeof v !== "object" || typeof v.id !== "string" || typeof v.address !== "string") return false;
      if (typeof v.voter !== "boolean") return false;
    }
  }
  return true;
}
