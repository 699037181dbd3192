// A digest of this server's replicated state at its applied index: every row of every table (the
// snapshot's persist stream, CBOR-encoded) and the committed cluster version. Servers that applied the
// same entries answer the same digest at the same index, so tests (and an operator after an upgrade)
// compare servers by it instead of by reading keys one at a time.
import { createHash } from "node:crypto";
import { encode } from "../lib/codec.ts";
import type { StateView } from "../state/state_view.ts";

export interface StateHash {
  /** The raft index of the last command the state reflects. */
  Index: number;
  /** Hex SHA-256 of the rows and the cluster version. */
  Hash: string;
  Records: number;
}

/** The digest of `view`, with `clusterVersion` the version in effect at its index (undefined: none written). */
export function stateHash(view: StateView, clusterVersion: string | undefined): StateHash {
  const h = createHash("sha256");
  h.update(encode({ clusterVersion: clusterVersion ?? null }));
  let records = 0;
  for (const r of view.records()) {
    h.update(encode(r));
    records++;
  }
  return { Index: view.index, Hash: h.digest("hex"), Records: records };
}
