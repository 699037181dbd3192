// Every feature that changes what goes into the log, a snapshot or an RPC, with the release that
// introduced it: the leader uses one only once the committed cluster version (cluster_version.ts) is at
// or above that release, so that no server is sent bytes it cannot read. A feature added in a release
// gets its row here in the same change; the row stays (the table is also the formats' history).
import { EdgeError } from "../lib/errors.ts";
import { FORMAT_VERSION } from "../snapshot/format.ts";

declare const EDGENODE_TEST_FEATURES: boolean | undefined;

/** Test-only features are compiled in by `build/build.ts --test-features` (a binary of its own). */
export const TEST_FEATURES: boolean = typeof EDGENODE_TEST_FEATURES === "boolean" && EDGENODE_TEST_FEATURES;

/** The first release. It has no Status.Versions method: a server answering "unknown method" runs it. */
export const FIRST_RELEASE = "0.1.0";

/**
 * The newest formats this binary reads: log entries (1: 0.1.0's; 2 adds cluster_version), snapshot files
 * (src/snapshot/format.ts), RPC frames (1; methods are added without a new frame format).
 */
export const FORMATS = { Log: 2, Snapshot: FORMAT_VERSION, Rpc: 1 } as const;
/** What a 0.1.0 server reads: it does not say, so this is recorded here. */
export const FIRST_RELEASE_FORMATS = { Log: 1, Snapshot: 1, Rpc: 1 } as const;
export type Formats = { Log: number; Snapshot: number; Rpc: number };

export interface Feature {
  /** The release that introduced it. */
  since: string;
  /** What it changes, for the refusal's message and for readers of this table. */
  what: string;
}

const RELEASED = {
  "cluster-version": {
    since: "0.2.0",
    what: "the cluster_version log entry, and snapshot format 2 (the cluster version in the header)",
  },
  "autopilot-config": {
    since: "0.2.0",
    what: "the autopilot_config log entry, and the autopilot configuration in a format 2 snapshot header",
  },
  "one-pass-restore": {
    since: "0.2.0",
    what: "Snapshot.Stage from the upload's first byte: no size and digest up front, an empty chunk at the upload's end, a reply frame with the peer's size and digest",
  },
} as const satisfies Record<string, Feature>;

/** Gated above the first release, so a test can show its refusal beside a 0.1.0 server and its use after. */
const TEST_ONLY = {
  "test-gated": { since: "0.2.0", what: "a test-only log entry (test_gated)" },
} as const satisfies Record<string, Feature>;

export type FeatureName = keyof typeof RELEASED | keyof typeof TEST_ONLY;

export const FEATURES: Readonly<Partial<Record<FeatureName, Feature>>> = TEST_FEATURES ? { ...RELEASED, ...TEST_ONLY } : RELEASED;

/** The feature that introduced each snapshot format after the first: a file of that format needs it. */
export const SNAPSHOT_FORMAT_FEATURE: Readonly<Record<number, FeatureName>> = { 2: "cluster-version" };

/** The feature's row; a feature not compiled into this binary is refused as unknown. */
export function feature(name: FeatureName): Feature {
  const f = FEATURES[name];
  if (!f) throw new EdgeError("NOT_FOUND", `feature ${name} is not compiled into this binary`);
  return f;
}

type Triple = [number, number, number];

/**
 * "1.2.3" (or "1.2.3-dev", a source build of 1.2.3: it writes and reads what 1.2.3 does) as numbers;
 * undefined when `v` is not a version.
 */
export function parseVersion(v: string): Triple | undefined {
  const m = /^(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:[-+][0-9A-Za-z.-]{0,64})?$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** The release part of a version ("0.2.0-dev" is "0.2.0"); the cluster version is kept in this form. */
export function releaseOf(v: string): string | undefined {
  return parseVersion(v)?.join(".");
}

/** Negative, zero or positive as `a` is older than, the same release as, or newer than `b`. Both must parse. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new EdgeError("BAD_REQUEST", `not a version: ${x ? b : a}`);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Whether a cluster at `clusterVersion` may use `name`. */
export function allows(clusterVersion: string, name: FeatureName): boolean {
  return compareVersions(clusterVersion, feature(name).since) >= 0;
}
