// Recovery after quorum loss, offline, on a stopped server (as hashicorp/raft's RecoverCluster): the
// server's membership becomes the given servers, every entry and snapshot it holds kept. The new
// configuration is a configuration entry appended after the last one in the log, in a term above any
// the server has seen, and the commit index is moved onto it. Configurations take effect when applied,
// so raft adopts it at start as it applies the log; being an entry, it survives restarts, and a later
// snapshot (taken at an applied index) records it. Moving the commit index commits every entry this
// server holds, including ones the lost servers never acknowledged; writes acknowledged only by the lost
// servers, which never reached this one, are gone.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { EdgeError } from "../lib/errors.ts";
import { decodeConfChange, encodeConfChange, MAX_SERVERS } from "../raft/membership.ts";
import { type Configuration, EntryType, type ServerInfo } from "../raft/storage.ts";
import { STABLE_FILE } from "../storage/stable_store.ts";
import type { Wal } from "../storage/wal.ts";
import { writeOfflineNote } from "./offline_note.ts";
import { openRaftStores } from "./raft_start.ts";

const SCAN_BATCH_BYTES = 8 << 20;
const MAX_ID_LENGTH = 256;

/** What the log of a stopped server says, before any change. */
export interface RaftDirState {
  nodeId: string;
  clusterId: string;
  term: number;
  lastIndex: number;
  lastTerm: number;
  commitIndex: number;
  snapshotIndex: number;
  /** The newest configuration in the log (or the snapshot's), and the index it is at. */
  config: Configuration;
  configIndex: number;
}

/** Parses `ID=ADDR,ID=ADDR,...`; every fault is named, nothing is guessed. */
export function parsePeers(text: string): ServerInfo[] {
  const out: ServerInfo[] = [];
  const parts = text.split(",").map((p) => p.trim());
  if (text.trim() === "" || parts.some((p) => p === "")) throw new EdgeError("BAD_REQUEST", `-peers "${text}": expected ID=HOST:PORT,...`);
  if (parts.length > MAX_SERVERS) throw new EdgeError("BAD_REQUEST", `-peers: at most ${MAX_SERVERS} servers`);
  for (const p of parts) {
    const eq = p.indexOf("=");
    const id = eq > 0 ? p.slice(0, eq) : "";
    const address = eq > 0 ? p.slice(eq + 1) : "";
    if (!id || !address) throw new EdgeError("BAD_REQUEST", `-peers: "${p}" is not ID=HOST:PORT`);
    if (id.length > MAX_ID_LENGTH || !/^[A-Za-z0-9._:-]+$/.test(id))
      throw new EdgeError("BAD_REQUEST", `-peers: "${id}" is not a server ID`);
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) throw new EdgeError("BAD_REQUEST", `-peers: "${address}" (of ${id}) is not HOST:PORT`);
    if (out.some((s) => s.id === id)) throw new EdgeError("BAD_REQUEST", `-peers: ${id} is named twice`);
    if (out.some((s) => s.address === address)) throw new EdgeError("BAD_REQUEST", `-peers: ${address} is named twice`);
    out.push({ id, address, voter: true });
  }
  return out;
}

function newestConfig(wal: Wal): { config: Configuration; index: number } {
  const snap = wal.snapshotMeta();
  let found = { config: snap.config, index: snap.index };
  for (let i = Math.max(snap.index + 1, wal.firstIndex()); i <= wal.lastIndex(); ) {
    const batch = wal.entries(i, wal.lastIndex() + 1, SCAN_BATCH_BYTES);
    for (const e of batch) if (e.type === EntryType.ConfChange) found = { config: decodeConfChange(e.data).config, index: e.index };
    i += batch.length;
  }
  return found;
}

type Stores = Awaited<ReturnType<typeof openRaftStores>>;

/** Opens the stores of a data directory that holds a server's raft state (never creating one). */
async function openExisting(dataDir: string, logAt: (level: string, msg: string) => void): Promise<Stores> {
  if (!existsSync(join(dataDir, "raft", STABLE_FILE)))
    throw new EdgeError("NOT_FOUND", `${dataDir} holds no raft state (no raft/${STABLE_FILE}): not a server's data directory`);
  return openRaftStores(dataDir, logAt);
}

function stateOf(s: Stores): RaftDirState {
  const st = s.stable.get();
  const last = s.wal.lastIndex();
  const { config, index } = newestConfig(s.wal);
  return {
    nodeId: st.nodeId,
    clusterId: st.clusterId,
    term: st.hardState.term,
    lastIndex: last,
    lastTerm: s.wal.term(last),
    commitIndex: st.hardState.commit,
    snapshotIndex: s.wal.snapshotMeta().index,
    config,
    configIndex: index,
  };
}

async function close(s: Stores): Promise<void> {
  await s.wal.close();
  s.stable.close();
}

/** The state of a stopped server's raft, read only. */
export async function readRaftDir(dataDir: string, logAt: (level: string, msg: string) => void): Promise<RaftDirState> {
  const s = await openExisting(dataDir, logAt);
  try {
    return stateOf(s);
  } finally {
    await close(s);
  }
}

/**
 * Rewrites the membership of the stopped server in `dataDir` (held locked by the caller) to `peers`,
 * which must name this server. Returns the state before and the recovery entry's index and term.
 */
export async function recoverMembership(
  dataDir: string,
  peers: ServerInfo[],
  logAt: (level: string, msg: string) => void,
): Promise<{ before: RaftDirState; index: number; term: number }> {
  const s = await openExisting(dataDir, logAt);
  try {
    const before = stateOf(s);
    const self = peers.find((p) => p.id === before.nodeId);
    if (!self)
      throw new EdgeError(
        "BAD_REQUEST",
        `-peers must name this server (ID ${before.nodeId}): a configuration without it could never elect it`,
      );
    if (before.lastIndex === 0 && before.snapshotIndex === 0)
      throw new EdgeError("BAD_REQUEST", `${dataDir}: this server never joined a cluster; there is nothing to recover`);
    // Sorted, and the change named after the first server rather than this one: survivors with the same
    // log and term recovered with the same -peers write byte-identical entries.
    const config: Configuration = { servers: peers.map((p) => ({ ...p })).sort((a, b) => a.id.localeCompare(b.id)) };
    const first = config.servers[0]!;
    const index = before.lastIndex + 1;
    // Above every term this server has seen, so no leader of an old term can have an entry here.
    const term = Math.max(before.term, before.lastTerm) + 1;
    const data = encodeConfChange({ change: { type: "addVoter", id: first.id, address: first.address }, config });
    await s.wal.append([{ index, term, type: EntryType.ConfChange, data }]);
    await s.wal.setHardState({ term, vote: "", commit: index });
    writeOfflineNote(dataDir, "raft recover", {
      index,
      term,
      peers: peers.map((p) => `${p.id}=${p.address}`).join(","),
      last_index: before.lastIndex,
      commit_index: before.commitIndex,
    });
    return { before, index, term };
  } finally {
    await close(s);
  }
}
