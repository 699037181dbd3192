// Kept only for server/snapshot_save.ts and server/snapshot_restore.ts, which another change is
// rewriting at the same time; delete once they import ../server/backend.ts.
export type { QueryOptions, SnapshotDownload } from "../server/backend.ts";
