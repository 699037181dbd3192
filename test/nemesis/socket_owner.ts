// Which process owns the client end of a loopback TCP connection: the proxy sees only the peer's
// port, so it finds that socket's inode in /proc/net/tcp and then the process holding it.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** The inode of the socket whose local port is `localPort` and remote port `remotePort`, if any. */
function socketInode(localPort: number, remotePort: number): string | undefined {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      const remote = f[2];
      const inode = f[9];
      if (!local || !remote || !inode) continue;
      if (
        parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === localPort &&
        parseInt(remote.slice(remote.lastIndexOf(":") + 1), 16) === remotePort
      )
        return inode;
    }
  }
  return undefined;
}

function holds(pid: number, needle: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === needle) return true;
    } catch {
      // the fd closed while we looked
    }
  }
  return false;
}

/**
 * The index in `pids` of the process that dialed us from `clientPort` to our `listenPort`, or
 * undefined when it is none of them (a CLI, the harness) or could not be found.
 */
export function connectionOwner(clientPort: number, listenPort: number, pids: readonly (number | undefined)[]): number | undefined {
  const inode = socketInode(clientPort, listenPort);
  if (!inode) return undefined;
  const needle = `socket:[${inode}]`;
  for (let i = 0; i < pids.length; i++) {
    const pid = pids[i];
    if (pid !== undefined && holds(pid, needle)) return i;
  }
  return undefined;
}
