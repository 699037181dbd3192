// The raft hard state (term, vote, commit) and this server's cluster identity, kept durably in a
// two-copy slot file (one fdatasync per update). Never rebuilt from peers: losing it could make a
// server vote twice in one term.
import { join } from "node:path";
import { assert, assertIndex } from "../lib/assert.ts";
import type { HardState } from "../raft/storage.ts";
import type { Disk } from "./disk.ts";
import { CorruptError } from "./disk_error.ts";
import { realDisk } from "./real_disk.ts";
import { SlotFile } from "./slot_file.ts";

export const STABLE_FILE = "stable";
const MAX_ID_LENGTH = 256;

export interface StableState {
  hardState: HardState;
  /** "" until the cluster is bootstrapped or joined. */
  clusterId: string;
  /** "" until assigned; once set it never changes. */
  nodeId: string;
}

const EMPTY: StableState = { hardState: { term: 0, vote: "", commit: 0 }, clusterId: "", nodeId: "" };

function validate(v: unknown, path: string): StableState {
  const bad = (why: string) => new CorruptError(`${path}: stable state is malformed (${why})`);
  if (!v || typeof v !== "object") throw bad("not a map");
  const o = v as Record<string, unknown>;
  const hs = o.hardState as Record<string, unknown> | undefined;
  if (!hs || typeof hs !== "object") throw bad("no hardState");
  const { term, vote, commit } = hs;
  if (typeof term !== "number" || !Number.isSafeInteger(term) || term < 0) throw bad("term");
  if (typeof commit !== "number" || !Number.isSafeInteger(commit) || commit < 0) throw bad("commit");
  if (typeof vote !== "string") throw bad("vote");
  if (typeof o.clusterId !== "string" || typeof o.nodeId !== "string") throw bad("identity");
  return { hardState: { term, vote, commit }, clusterId: o.clusterId, nodeId: o.nodeId };
}

export class StableStore {
  private state: StableState;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly slot: SlotFile,
    readonly path: string,
  ) {
    this.state = validate(slot.value, path);
  }

  static async open(dir: string, opts: { disk?: Disk } = {}): Promise<StableStore> {
    const disk = opts.disk ?? realDisk;
    disk.mkdirp(dir);
    const path = join(dir, STABLE_FILE);
    return new StableStore(await SlotFile.open(disk, path, EMPTY), path);
  }

  get(): StableState {
    return { hardState: { ...this.state.hardState }, clusterId: this.state.clusterId, nodeId: this.state.nodeId };
  }

  /**
   * Durably update some fields. Asserts the raft invariants: the term never decreases, the vote
   * changes only with a new term, commit never decreases, and identities once set are not changed.
   */
  set(partial: Partial<StableState>): Promise<void> {
    // Serialized, so each update is checked against (and merged into) the one before it.
    const p = this.chain.then(() => this.apply(partial));
    this.chain = p;
    return p;
  }

  private async apply(partial: Partial<StableState>): Promise<void> {
    const next: StableState = { ...this.get(), ...partial };
    const prev = this.state;
    const hs = next.hardState;
    assertIndex(hs.term, "term");
    assertIndex(hs.commit, "commit");
    assert(hs.term >= prev.hardState.term, () => `term went backwards: ${prev.hardState.term} -> ${hs.term}`);
    assert(
      hs.term > prev.hardState.term || prev.hardState.vote === "" || hs.vote === prev.hardState.vote,
      () => `vote changed within term ${hs.term}: ${prev.hardState.vote} -> ${hs.vote}`,
    );
    assert(hs.commit >= prev.hardState.commit, () => `commit went backwards: ${prev.hardState.commit} -> ${hs.commit}`);
    for (const k of ["clusterId", "nodeId"] as const) {
      assert(next[k].length <= MAX_ID_LENGTH, () => `${k} longer than ${MAX_ID_LENGTH}`);
      assert(prev[k] === "" || next[k] === prev[k], () => `${k} cannot change once set (${prev[k]} -> ${next[k]})`);
    }
    await this.slot.write(next);
    this.state = next;
  }

  close(): void {
    this.slot.close();
  }
}
