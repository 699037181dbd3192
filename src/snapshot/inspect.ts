// `operator snapshot inspect FILE`: verify a snapshot file offline and describe it, laid out like Nomad's
// `operator snapshot inspect` (label column, then values; then one row per table).

import { badRequest, EdgeError, errnoOf } from "../lib/errors.ts";
import { stat } from "node:fs/promises";
import type { SnapshotHeader } from "./format.ts";
import { verifySnapshotFile } from "./reader.ts";

export interface InspectResult {
  header: SnapshotHeader;
  size: number;
  sha256: string;
  counts: Record<string, number>;
  records: number;
}

/** Fully verifies the file first: what it prints is what a restore would accept. */
export async function inspectSnapshotFile(path: string): Promise<InspectResult> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new EdgeError("NOT_FOUND", `cannot read snapshot file ${path}: ${errnoOf(e) ?? String(e)}`);
  }
  if (!st.isFile()) throw badRequest(`cannot read snapshot file ${path}: not a regular file`);
  const r = await verifySnapshotFile(path);
  return { header: r.header, size: r.size, sha256: r.sha256, counts: r.counts, records: r.records };
}

function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
}

export function formatInspect(r: InspectResult): string {
  const h = r.header;
  // The cluster version is in the header from format 2 on; a format 1 file has no line for it (not a guess).
  const clusterVersion: [string, string][] = h.clusterVersion === undefined ? [] : [["Cluster Version", h.clusterVersion]];
  const lines = table([
    ["ID", h.snapshotId],
    ["Size", String(r.size)],
    ["Index", String(h.index)],
    ["Term", String(h.term)],
    ["Version", String(h.formatVersion)],
    ["Producer", h.producer],
    ...clusterVersion,
    ["Region", h.region],
    ["Cluster ID", h.clusterId === "" ? "-" : h.clusterId],
    ["Created", h.created],
    ["SHA-256", r.sha256],
  ]);
  lines.push("");
  const names = Object.keys(r.counts).sort();
  lines.push(
    ...table([["Table", "Records"], ...names.map((n): [string, string] => [n, String(r.counts[n])]), ["Total", String(r.records)]]),
  );
  return `${lines.join("\n")}\n`;
}
