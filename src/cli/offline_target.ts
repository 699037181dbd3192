// The data directory an offline command works on (a stopped server's), from -data-dir or the server's
// own configuration (-config), and the lock that keeps an agent out of it while the command runs.
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { type DirLock, lockDataDir } from "../storage/dir_lock.ts";
import { CliError, str, strs } from "./command.ts";
import type { FlagSpec, ParsedFlags } from "./flags.ts";

export const OFFLINE_TARGET_FLAGS: FlagSpec[] = [
  { name: "data-dir", kind: "string", arg: "DIR", help: "The stopped server's data directory (default: data_dir of -config)." },
  {
    name: "config",
    kind: "strings",
    arg: "PATH",
    help: "The server's configuration (a file or directory; repeat to merge), for its data_dir, advertise.rpc and region.",
  },
];

export interface OfflineTarget {
  dataDir: string;
  cfg: Config | undefined;
}

export async function offlineTarget(f: ParsedFlags, doing: string): Promise<OfflineTarget> {
  const paths = strs(f, "config");
  let cfg: Config | undefined;
  if (paths.length > 0) {
    try {
      cfg = await loadConfig(paths);
    } catch (e) {
      throw new CliError(`Error ${doing}: loading configuration: ${(e as Error).message}`);
    }
  }
  const dataDir = str(f, "data-dir") || cfg?.data_dir || "";
  if (!dataDir) throw new CliError(`Error ${doing}: give -data-dir DIR, or -config PATH of the server`);
  return { dataDir, cfg };
}

/** The directory's lock for the command's run, or a CliError naming the agent that holds it. */
export function lockForCommand(dataDir: string, what: string, doing: string, opts: { create?: boolean } = {}): DirLock {
  try {
    return lockDataDir(dataDir, what, opts);
  } catch (e) {
    throw new CliError(`Error ${doing}: ${(e as Error).message}`);
  }
}
