// Free TCP ports for tests that start servers.

const handedOut = new Set<number>();

/**
 * A TCP port that was free a moment ago (the OS picked it), never one this process handed out before:
 * the OS may offer a released port again, so two picks in a row (a server's HTTP and RPC ports) could
 * otherwise be the same, and a test that keeps a port unused on purpose (a region that is down) once
 * found another test's server listening on it. Another process can still take it first; callers that
 * bind retry with new ports where that matters.
 */
export function freePort(): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = s.port;
    s.stop(true);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no fresh free port after 100 tries");
}
