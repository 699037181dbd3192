// Free TCP ports for tests that start servers, which cannot be taken before the server binds them.
//
// A port the OS picked (bind to port 0) and released is free for anyone: a test file running next to
// this one, or another suite on the machine, may be handed the same port by the OS before our server
// binds it. So ports are not picked that way. They come from below the OS's ephemeral range, which
// the OS never hands to a bind to port 0 nor to an outgoing connection, and each is leased across
// processes by a file `<port>/<pid>` in one shared directory: a port is this process's once its lease
// is the only live one for that port. A lease lives as long as this process (bun test does not run exit
// handlers, so the next process to want the port removes it), so a server killed and restarted in a
// test finds its ports still its own.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LEASES = join(tmpdir(), "edgenode-test-ports");
const LOWEST = 10_000;

/** The first port of the OS's ephemeral range (Linux says; 32768 is the lowest any system uses). */
function ephemeralLow(): number {
  try {
    const lo = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(lo) && lo > LOWEST + 1000) return lo;
  } catch {
    // not Linux: macOS and Windows start theirs at 49152
  }
  return 32_768;
}

const HIGHEST = ephemeralLow() - 1;
const mine: string[] = [];

process.on("exit", () => {
  for (const f of mine) rmSync(f, { force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * Leases `port` for this process: writes this process's lease, then keeps the port only if no other
 * live process holds a lease on it. Two processes racing for one port can both give it up, never
 * both keep it: each writes its lease before it looks, so the later looker sees the earlier's.
 */
function lease(port: number): boolean {
  const dir = join(LEASES, String(port));
  mkdirSync(dir, { recursive: true });
  const own = join(dir, String(process.pid));
  try {
    closeSync(openSync(own, "wx"));
  } catch {
    return false; // this process had it already (a port it handed out before)
  }
  let taken = false;
  for (const name of readdirSync(dir)) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    if (alive(pid)) taken = true;
    else rmSync(join(dir, name), { force: true }); // a lease of a process that is gone
  }
  if (taken) {
    rmSync(own, { force: true });
    return false;
  }
  mine.push(own);
  return true;
}

/** Whether nothing (a process that does not lease, say) listens on `port` right now. */
function bindable(port: number): boolean {
  try {
    Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/** A TCP port on 127.0.0.1 that is this process's alone until it exits; never one handed out before. */
export function freePort(): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1));
    if (!lease(port)) continue;
    if (bindable(port)) return port;
  }
  throw new Error(`no free port to lease in ${LOWEST}-${HIGHEST} after 1000 tries (leases in ${LEASES})`);
}
