// The committed cluster version: the release every server of the configuration had reached when the
// leader last wrote a cluster_version entry. Every server takes it from the same entry at the same index,
// and from the header of a raft snapshot it installs, so every server answers the same at every index.
// Without any entry (a cluster formed by 0.1.0, or one not yet raised) it is the first release.
import { assert } from "../lib/assert.ts";
import { EdgeError } from "../lib/errors.ts";
import { FIRST_RELEASE, releaseOf } from "./features.ts";

/** Raises (or, never written by a leader, lowers) the cluster version from its entry's index on. */
export type ClusterVersionOp = { op: "cluster_version"; version: string };

/** Changes kept to answer for a snapshot view taken at an older index (a view lives for seconds; changes come with upgrades). */
const KEPT_CHANGES = 16;

export class CommittedVersion {
  /** Undefined until an entry (or a snapshot holding one) sets it: then the cluster is at the first release. */
  private current: string | undefined;
  /** Recent changes, oldest first, each with what was in effect before it. */
  private changes: { index: number; version: string; previous: string | undefined }[] = [];

  /** The cluster version after everything applied so far. */
  get version(): string {
    return this.current ?? FIRST_RELEASE;
  }

  /** Whether a cluster_version entry (or a snapshot holding one) has been applied. */
  get written(): boolean {
    return this.current !== undefined;
  }

  /** What was written as of `index` (for the header of a snapshot of a view at that index); undefined: nothing yet. */
  at(index: number): string | undefined {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const c = this.changes[i];
      assert(c !== undefined, "a kept change");
      if (c.index <= index) return c.version;
    }
    return this.changes[0]?.previous;
  }

  /** The entry at `index` applies: the same on every server, so its checks throw the same everywhere. */
  apply(index: number, op: ClusterVersionOp): { Version: string } {
    const version = releaseOf(op.version);
    if (!version) throw new EdgeError("BAD_REQUEST", `cluster_version entry ${index}: "${op.version}" is not a version`);
    this.changes.push({ index, version, previous: this.current });
    if (this.changes.length > KEPT_CHANGES) this.changes.shift();
    this.current = version;
    return { Version: version };
  }

  /** The state was replaced from a snapshot at `index` whose header carried `version` (none: never written). */
  loaded(index: number, version: string | undefined): void {
    const v = version === undefined ? undefined : releaseOf(version);
    if (version !== undefined && !v)
      throw new EdgeError("BAD_SNAPSHOT", `snapshot ${index}: cluster version "${version}" is not a version`);
    this.current = v;
    this.changes = v ? [{ index, version: v, previous: undefined }] : [];
  }
}
