// A TCP proxy in front of one server's RPC port. Every server advertises its proxy's address, so
// every connection into server j passes proxy j; the proxy learns which server dialed (from /proc)
// and applies the network's per-direction rules: cut, one-way discard, delay, flaky resets.
import { createServer, connect, type Server, type Socket } from "node:net";
import { connectionOwner } from "./socket_owner.ts";

/** Rules for bytes flowing from server `from` to server `to`. */
export interface LinkRule {
  /** Bytes are discarded (the connection is reset when the rule is lifted: its stream is torn). */
  blocked: boolean;
  delayMs: number;
  jitterMs: number;
  /** Probability per chunk that the connection is reset. */
  resetChance: number;
}

export interface LinkPolicy {
  rule(from: number, to: number): LinkRule;
  random(): number;
}

interface Conn {
  from: number | undefined;
  client: Socket;
  upstream: Socket;
  torn: boolean;
}

export class LinkProxy {
  private server: Server | undefined;
  private readonly conns = new Set<Conn>();
  /** Connections whose dialer could not be identified (they bypass the rules: should stay 0). */
  unidentified = 0;

  constructor(
    readonly to: number,
    readonly listenPort: number,
    readonly targetPort: number,
    private readonly pids: () => readonly (number | undefined)[],
    private readonly policy: LinkPolicy,
  ) {}

  async start(): Promise<void> {
    const server = createServer({ pauseOnConnect: true }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.listenPort, "127.0.0.1", () => resolve());
    });
  }

  private accept(client: Socket): void {
    let from: number | undefined;
    for (let attempt = 0; attempt < 3 && from === undefined; attempt++)
      from = connectionOwner(client.remotePort ?? -1, this.listenPort, this.pids());
    if (from === undefined) this.unidentified++;
    if (from !== undefined && this.policy.rule(from, this.to).blocked && this.policy.rule(this.to, from).blocked) {
      client.destroy();
      return;
    }
    const upstream = connect(this.targetPort, "127.0.0.1");
    const conn: Conn = { from, client, upstream, torn: false };
    this.conns.add(conn);
    const close = () => {
      if (!this.conns.delete(conn)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    this.pipe(conn, client, upstream, from, this.to);
    this.pipe(conn, upstream, client, this.to, from);
    client.resume();
  }

  private pipe(conn: Conn, src: Socket, dst: Socket, from: number | undefined, to: number | undefined): void {
    // Delivery times stay in order even as the delay changes.
    let lastDue = 0;
    src.on("data", (chunk: Buffer) => {
      if (from === undefined || to === undefined) {
        if (!dst.write(chunk)) src.pause();
        return;
      }
      const rule = this.policy.rule(from, to);
      if (rule.blocked) {
        conn.torn = true;
        return;
      }
      if (conn.torn) return;
      if (rule.resetChance > 0 && this.policy.random() < rule.resetChance) {
        conn.client.destroy();
        conn.upstream.destroy();
        return;
      }
      const delay = rule.delayMs + (rule.jitterMs > 0 ? this.policy.random() * rule.jitterMs : 0);
      if (delay <= 0 && lastDue <= performance.now()) {
        if (!dst.write(chunk)) src.pause();
        return;
      }
      const due = Math.max(performance.now() + delay, lastDue);
      lastDue = due;
      setTimeout(() => {
        if (!dst.destroyed) dst.write(chunk);
      }, due - performance.now());
    });
    dst.on("drain", () => src.resume());
  }

  /** Resets connections between this server and `peer` (both directions), or torn ones when `tornOnly`. */
  reset(match: (c: { from: number | undefined; torn: boolean }) => boolean): void {
    for (const c of [...this.conns]) {
      if (match(c)) {
        c.client.destroy();
        c.upstream.destroy();
        this.conns.delete(c);
      }
    }
  }

  async stop(): Promise<void> {
    this.reset(() => true);
    const s = this.server;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
