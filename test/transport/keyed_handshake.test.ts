// The cluster-key session opening: in memory (every message of the exchange, a wrong key either way, a
// replayed transcript, a truncated or oversized message) and over real sockets (a keyed pool and
// listener agree on who is who; a wrong key fails the dial and is counted; a stalled handshake is
// closed by the first-frame deadline, and by the dialler's timeout on its side; an anonymous session
// reaches only what peerAllowed lets it).
import { afterEach, expect, test } from "bun:test";
import { ClusterKeys, generateClusterKey, isClusterKey } from "../../src/transport/cluster_keys.ts";
import { KeyedAcceptor, KeyedDialer, MAX_HANDSHAKE_MESSAGE, type Step } from "../../src/transport/keyed_handshake.ts";
import { ConnPool } from "../../src/transport/pool.ts";
import { RpcServer, type RpcServerOptions } from "../../src/transport/rpc_server.ts";
import { z } from "zod";
import { waitFor } from "../support/wait.ts";
import { dialMux } from "../../src/transport/tcp_wire.ts";
import { DialError } from "../../src/transport/dial.ts";

const A = generateClusterKey();
const B = generateClusterKey();
const dialerSelf = { id: "srv-d", region: "global" };
const acceptorSelf = { id: "srv-a", region: "global" };

/** Runs a whole exchange in memory; returns both sides' last steps and every message the dialler sent. */
function exchange(dialKeys: string[], acceptKeys: string[]) {
  const d = new KeyedDialer(new ClusterKeys(dialKeys), dialerSelf);
  const a = new KeyedAcceptor(new ClusterKeys(acceptKeys), acceptorSelf);
  const sent: Uint8Array[] = [d.hello()];
  let toDialer: Step = a.feed(sent[0]!);
  let dStep: Step = {};
  let aStep: Step = toDialer;
  for (let i = 0; i < 4 && toDialer.send && aStep.fail === undefined; i++) {
    dStep = d.feed(toDialer.send);
    if (!dStep.send) break;
    sent.push(dStep.send);
    aStep = a.feed(dStep.send);
    toDialer = aStep;
  }
  if (toDialer.send && dStep.done === undefined && dStep.fail === undefined) dStep = d.feed(toDialer.send);
  return { d: dStep, a: aStep, sent };
}

test("keys are 32 bytes of base64; keygen makes a new one each time", () => {
  expect(isClusterKey(A)).toBe(true);
  expect(A).not.toBe(B);
  expect(isClusterKey(A.slice(1))).toBe(false);
  expect(isClusterKey(Buffer.alloc(16).toString("base64"))).toBe(false);
  expect(() => new ClusterKeys(["not a key"])).toThrow("32 bytes");
});

test("the same key: both ends finish, each knowing the other's server id and region", () => {
  const r = exchange([A], [A]);
  expect(r.a.fail).toBeUndefined();
  expect(r.d.fail).toBeUndefined();
  const id = Buffer.from(new ClusterKeys([A]).primary.id).toString("hex");
  expect(r.a.done?.peer).toEqual({ kind: "key", serverId: "srv-d", region: "global", keyId: id });
  expect(r.d.done?.peer).toEqual({ kind: "key", serverId: "srv-a", region: "global", keyId: id });
});

test("rotation: an acceptor holding [new, old] accepts a dialler still on old; one holding only new refuses it", () => {
  expect(exchange([A], [B, A]).a.done?.peer).toMatchObject({ serverId: "srv-d" });
  const r = exchange([A], [B]);
  expect(r.a.fail).toContain("offered a key this server does not hold");
  expect(r.d.fail).toContain("refused the session: the cluster key does not match");
});

test("a dialler that names the acceptor's key id without holding the key cannot verify the acceptor, and never proves itself", () => {
  const ringA = new ClusterKeys([A]);
  const d = new KeyedDialer(new ClusterKeys([B]), dialerSelf);
  const hello = d.hello();
  // Swap in key A's id (bytes 2 + 1 + 32 .. +8 of the framed hello).
  hello.set(ringA.primary.id, 3 + 32);
  const a = new KeyedAcceptor(ringA, acceptorSelf);
  const challenge = a.feed(hello);
  expect(challenge.fail).toBeUndefined();
  const step = d.feed(challenge.send!);
  expect(step.fail).toBe("the server did not prove the cluster key");
  expect(step.send).toBeUndefined();
});

test("a proof MACed with the wrong key is refused", () => {
  const ringA = new ClusterKeys([A]);
  const honest = new KeyedDialer(ringA, dialerSelf);
  const a = new KeyedAcceptor(ringA, acceptorSelf);
  const proof = honest.feed(a.feed(honest.hello()).send!).send!;
  const forged = proof.slice();
  forged[forged.length - 1]! ^= 1;
  const r = a.feed(forged);
  expect(r.fail).toContain("did not prove the cluster key");
  expect(r.done).toBeUndefined();
});

test("a recorded opening replayed to the acceptor fails: its fresh nonce makes the old proof worthless", () => {
  const first = exchange([A], [A]);
  expect(first.a.done).toBeDefined();
  const [hello, proof] = first.sent;
  const again = new KeyedAcceptor(new ClusterKeys([A]), acceptorSelf);
  expect(again.feed(hello!).fail).toBeUndefined();
  const r = again.feed(proof!);
  expect(r.fail).toContain("did not prove the cluster key");
  expect(r.done).toBeUndefined();
});

test("the acceptor's own answer reflected back as a proof fails (server and client MACs differ)", () => {
  const ring = new ClusterKeys([A]);
  const d = new KeyedDialer(ring, dialerSelf);
  const a = new KeyedAcceptor(ring, acceptorSelf);
  const challenge = a.feed(d.hello()).send!;
  // Status byte 0 then the challenge's last 32 bytes (its MAC), framed as a proof.
  const mac = challenge.subarray(challenge.length - 32);
  const reflected = Uint8Array.of(0, 33, 0, ...mac);
  expect(a.feed(reflected).fail).toContain("did not prove the cluster key");
});

test("a truncated, an oversized, an empty-id and a wrong-version hello each fail without an answer that proves anything", () => {
  const ring = new ClusterKeys([A]);
  const hello = new KeyedDialer(ring, dialerSelf).hello();
  // Length says the body is 10 bytes: a body too short for nonce and key id.
  const truncated = Uint8Array.of(0, 10, ...hello.subarray(2, 12));
  expect(new KeyedAcceptor(ring, acceptorSelf).feed(truncated).fail).toContain("truncated");
  const big = MAX_HANDSHAKE_MESSAGE + 1;
  expect(new KeyedAcceptor(ring, acceptorSelf).feed(Uint8Array.of(big >> 8, big & 0xff, 1)).fail).toContain(
    `handshake message of ${big} bytes`,
  );
  const noId = new KeyedDialer(ring, { id: "", region: "global" }).hello();
  expect(new KeyedAcceptor(ring, acceptorSelf).feed(noId).fail).toBe("empty server id");
  const v9 = hello.slice();
  v9[2] = 9;
  const r = new KeyedAcceptor(ring, acceptorSelf).feed(v9);
  expect(r.fail).toBe("handshake version 9");
  // The refusal is a status byte and text, not a challenge: nothing MACed with the key goes out.
  expect(r.send![2]).toBe(1);
});

test("a hello split into single bytes is reassembled", () => {
  const ring = new ClusterKeys([A]);
  const hello = new KeyedDialer(ring, dialerSelf).hello();
  const a = new KeyedAcceptor(ring, acceptorSelf);
  let last: Step = {};
  for (const b of hello) last = a.feed(Uint8Array.of(b));
  expect(last.fail).toBeUndefined();
  expect(last.send).toBeDefined();
});

// ---- over sockets ----

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function keyedServer(keys: string[], o: Partial<RpcServerOptions> = {}) {
  const refused: string[] = [];
  const denied: string[] = [];
  const server = new RpcServer({
    bindAddr: "127.0.0.1",
    port: 0,
    info: () => ({ ID: "srv-a", Name: "a", Region: "global", Version: "v" }),
    onRefused: (reason) => refused.push(reason),
    mux: { keepaliveIntervalMs: 0 },
    keyed: { keys: new ClusterKeys(keys), self: () => acceptorSelf },
    peerAllowed: (method, peer) => method === "Status.Ping" || peer.kind === "key",
    onDenied: (method) => denied.push(method),
    ...o,
  });
  server.unary("Test.Who", z.unknown(), async (_a, ctx) => ctx.peer);
  const { port } = await server.listen();
  cleanup.push(() => server.close(0));
  return { server, addr: `127.0.0.1:${port}`, port, refused, denied };
}

function pool(keys?: string[], id = "srv-d") {
  const p = new ConnPool(keys ? { keyed: { keys: new ClusterKeys(keys), self: () => ({ id, region: "global" }) } } : {});
  cleanup.push(() => p.close());
  return p;
}

test("over TCP: a keyed dial is a session of the server its handshake named; every call sees that identity", async () => {
  const s = await keyedServer([A]);
  const p = pool([A], "srv-d");
  expect(await p.call(s.addr, "Test.Who", null)).toMatchObject({ kind: "key", serverId: "srv-d", region: "global" });
  expect((await p.session(s.addr)).peer).toMatchObject({ kind: "key", serverId: "srv-a", region: "global" });
  expect(s.refused).toEqual([]);
});

test("over TCP: taking a key out of the ring closes the sessions that proved it; the dialler's next session uses its new key", async () => {
  const ring = new ClusterKeys([B, A]);
  const s = await keyedServer([A], { keyed: { keys: ring, self: () => acceptorSelf } });
  const p = pool([A]);
  const first = await p.session(s.addr);
  expect(await p.call(s.addr, "Test.Who", null)).toMatchObject({ serverId: "srv-d" });
  ring.set([B]);
  expect(s.server.dropSessions((peer) => peer.kind === "key" && !ring.holds(peer.keyId), "key removed")).toBe(1);
  await waitFor(() => first.closed, 5_000, "the old key's session to close");
  // The dialler still holds only the old key: its new session is refused.
  await expect(p.call(s.addr, "Test.Who", null, { timeoutMs: 3_000 })).rejects.toThrow("cluster key does not match");
});

test("over TCP: a wrong key fails the dial with the server's reason, and the refusal is counted", async () => {
  const s = await keyedServer([A]);
  const p = pool([B]);
  await expect(p.call(s.addr, "Test.Who", null, { timeoutMs: 3_000 })).rejects.toThrow("cluster key does not match");
  await waitFor(() => s.server.refusedCounts().key_handshake_failed === 1, 5_000, "the refusal to be counted");
});

test("over TCP: an anonymous (0x01) session may ping a keyed server but nothing else", async () => {
  const s = await keyedServer([A]);
  const p = pool();
  expect(await p.call(s.addr, "Status.Ping", null)).toMatchObject({ ID: "srv-a" });
  await expect(p.call(s.addr, "Test.Who", null)).rejects.toThrow("Test.Who is not open to an unauthenticated session");
  expect(s.denied).toEqual(["Test.Who"]);
});

test("over TCP: a handshake that stalls after the preamble is closed by the first-frame deadline", async () => {
  const s = await keyedServer([A], { firstByteMs: 200, firstFrameMs: 600 });
  const st = { closed: false, closedAt: 0 };
  const t0 = performance.now();
  const hello = new KeyedDialer(new ClusterKeys([A]), dialerSelf).hello();
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port: s.port,
    socket: {
      data() {},
      close() {
        st.closed = true;
        st.closedAt = performance.now();
      },
    },
  });
  cleanup.push(() => void sock.end());
  // The preamble and half a hello, then silence.
  sock.write(Uint8Array.of(0x02, ...hello.subarray(0, 20)));
  await waitFor(() => st.closed, 5_000, "the stalled handshake to be closed");
  expect(st.closedAt - t0).toBeGreaterThanOrEqual(550);
  expect(s.refused).toEqual(["key_handshake_timeout"]);
});

test("over TCP: a listener that never answers the keyed hello fails the dial at its timeout, and the dialler hangs up", async () => {
  const seen = { bytes: 0, closed: false };
  const silent = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, chunk) {
        seen.bytes += chunk.length;
      },
      close() {
        seen.closed = true;
      },
    },
  });
  cleanup.push(() => silent.stop(true));
  const t0 = performance.now();
  const e = await dialMux(`127.0.0.1:${silent.port}`, { keepaliveIntervalMs: 0 }, 300, {
    keys: new ClusterKeys([A]),
    self: () => dialerSelf,
  }).then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DialError);
  expect((e as Error).message).toMatch(new RegExp(`^dial 127\\.0\\.0\\.1:${silent.port}: cluster-key handshake timed out after \\d+ ms$`));
  expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
  expect(seen.bytes).toBeGreaterThan(1);
  await waitFor(() => seen.closed, 5_000, "the dialler to close the socket");
});

test("over TCP: a server without a key refuses the keyed preamble, and the dial says so", async () => {
  const server = new RpcServer({
    bindAddr: "127.0.0.1",
    port: 0,
    info: () => ({ ID: "x", Name: "x", Region: "global", Version: "v" }),
    mux: { keepaliveIntervalMs: 0 },
    onRefused: () => {},
  });
  const { port } = await server.listen();
  cleanup.push(() => server.close(0));
  await expect(pool([A]).call(`127.0.0.1:${port}`, "Status.Ping", null, { timeoutMs: 3_000 })).rejects.toThrow("connection closed by peer");
  expect(server.refusedCounts()).toEqual({ key_not_enabled: 1 });
});
