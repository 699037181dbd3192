// An HTTP/1.1 server on raw TCP (or TLS) sockets that owns its connections: it sees each one from its
// accept, so a connection that never sends a request can be counted, refused and timed out like any
// other. It speaks what the API needs and no more: keep-alive and pipelining (answered in order),
// HTTP/1.0, Content-Length and chunked request bodies streamed into `Request.body` with backpressure
// (the socket stops being read while the handler does not read), `Expect: 100-continue`, responses with
// a length when the body is known and chunked when it is a stream, written as the socket drains.
// Anything that could let two parsers disagree on where a request ends (both Content-Length and
// Transfer-Encoding, a bad length or chunk size, an unknown coding, folded or space-before-colon
// headers) is answered 400 and the connection closed.
import { type DeadlineTimer, deadlineTimer } from "../lib/deadline.ts";
import type { Socket } from "bun";
import { assert } from "../lib/assert.ts";

export interface Http1Hooks {
  /** A new connection from `address`: undefined takes it, bytes refuse it (written, then closed). */
  admit(address: string): Uint8Array | undefined;
  /** An admitted connection from `address` has closed. */
  closed(address: string): void;
  fetch(req: Request, exchange: Exchange): Response | Promise<Response>;
}

/** What a handler may know and change about the connection its request came on. */
export interface Exchange {
  readonly address: string;
  /** Seconds of inactivity after which the connection is closed, until this request's response is written; 0 for none. */
  timeout(seconds: number): void;
}

export interface Http1Options {
  hostname: string;
  port: number;
  tls?: { cert: unknown; key: unknown; ca?: unknown };
  /** Time a new connection has to send a whole request head. */
  firstRequestMs: number;
  /** Seconds a connection may sit with nothing read or written, between requests and within one. */
  idleTimeoutS: number;
  /** Largest request head (request line and headers). */
  maxHeadBytes: number;
}

export interface Http1Server {
  readonly port: number;
  /** Stops accepting; closes every connection at once, or idle ones now and the rest after their response. Resolves when none is left. */
  stop(closeActive: boolean): Promise<void>;
}

/** Body bytes still to come, past which a response sent before its request's body was read closes the connection. */
const MAX_DISCARD_BYTES = 1024 * 1024;
/** Request body bytes queued unread past which the socket stops being read (until the queue is read empty). */
const BODY_QUEUE_BYTES = 256 * 1024;
/** Longest chunk-size line (size, extensions): a bound, not a use. */
const MAX_CHUNK_LINE = 4096;

/** Where a small response is put together for its one write (which copies it out at once). */
const scratch = Buffer.allocUnsafe(64 * 1024);
const CRLF2 = Buffer.from("\r\n\r\n");
const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  307: "Temporary Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** A whole response with a short text body and `Connection: close`, for refusals before any handler runs. */
export function plainResponse(status: number, text: string): Uint8Array {
  const body = Buffer.from(`${text}\n`);
  return Buffer.from(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\ncontent-type: text/plain; charset=UTF-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\ndate: ${httpDate()}\r\n\r\n${body.toString("latin1")}`,
    "latin1",
  );
}

let dateSecond = 0;
let dateText = "";
/** The Date header's value, built once a second. */
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

class BadRequest extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface Head {
  method: string;
  target: string;
  http10: boolean;
  headers: [string, string][];
  host: string | undefined;
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  expectContinue: boolean;
}

/** Parses a request head (without its final CRLF CRLF). */
function parseHead(text: string): Head {
  let eol = text.indexOf("\r\n");
  if (eol < 0) eol = text.length;
  const sp1 = text.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : text.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 > eol || sp2 === sp1 + 1) throw new BadRequest(400, "malformed request line");
  const method = text.slice(0, sp1);
  const target = text.slice(sp1 + 1, sp2);
  const version = text.slice(sp2 + 1, eol);
  let http10 = false;
  if (version !== "HTTP/1.1") {
    if (version === "HTTP/1.0") http10 = true;
    else throw new BadRequest(version.startsWith("HTTP/") ? 505 : 400, "unsupported HTTP version");
  }
  const headers: [string, string][] = [];
  let host: string | undefined;
  let contentLength = -1;
  let te: string | undefined;
  let connection: string | undefined;
  let expectContinue = false;
  let pos = eol + 2;
  while (pos < text.length) {
    let end = text.indexOf("\r\n", pos);
    if (end < 0) end = text.length;
    const c0 = text.charCodeAt(pos);
    if (c0 === 32 || c0 === 9) throw new BadRequest(400, "folded header line");
    const colon = text.indexOf(":", pos);
    if (colon <= pos || colon > end) throw new BadRequest(400, "malformed header line");
    const cb = text.charCodeAt(colon - 1);
    if (cb === 32 || cb === 9) throw new BadRequest(400, "space before a header's colon");
    const name = text.slice(pos, colon);
    const value = text.slice(colon + 1, end).trim();
    pos = end + 2;
    headers.push([name, value]);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === "host") host = value;
        break;
      case 6:
        if (name.toLowerCase() === "expect") {
          if (value.toLowerCase() === "100-continue") expectContinue = true;
          else throw new BadRequest(417, "unsupported expectation");
        }
        break;
      case 10:
        if (name.toLowerCase() === "connection") connection = connection === undefined ? value : `${connection},${value}`;
        break;
      case 14:
        if (name.toLowerCase() === "content-length") {
          if (contentLength >= 0) throw new BadRequest(400, "more than one Content-Length");
          contentLength = decimal(value);
        }
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") {
          if (te !== undefined) throw new BadRequest(400, "more than one Transfer-Encoding");
          te = value;
        }
        break;
    }
  }
  let chunked = false;
  if (te !== undefined) {
    if (contentLength >= 0) throw new BadRequest(400, "both Content-Length and Transfer-Encoding");
    if (http10 || te.toLowerCase() !== "chunked") throw new BadRequest(400, `unsupported Transfer-Encoding: ${te}`);
    chunked = true;
  }
  const conn = connection?.toLowerCase();
  const keepAlive = http10 ? conn?.includes("keep-alive") === true : !(conn !== undefined && /(^|[\s,])close($|[\s,])/.test(conn));
  return { method, target, http10, headers, host, contentLength: Math.max(contentLength, 0), chunked, keepAlive, expectContinue };
}

/** A Content-Length value: digits only, below 2^53. */
function decimal(s: string): number {
  if (s.length === 0 || s.length > 15) throw new BadRequest(400, "bad Content-Length");
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) throw new BadRequest(400, "bad Content-Length");
  }
  return Number(s);
}

/** Receives one request's body from the socket: decodes its framing and queues it for the handler. */
class BodySink {
  readonly stream: ReadableStream<Uint8Array>;
  done = false;
  /** The handler no longer wants it: bytes are dropped until its end. */
  discarding = false;
  /** Bytes of a Content-Length body still to come, or of the current chunk. */
  private remaining: number;
  private readonly chunked: boolean;
  private state: "size" | "data" | "data_crlf" | "trailer" = "size";
  private line = "";
  private ctl!: ReadableStreamDefaultController<Uint8Array>;
  private readonly conn: Conn;
  private continueDue: boolean;

  constructor(conn: Conn, head: Head) {
    this.conn = conn;
    this.chunked = head.chunked;
    this.remaining = head.chunked ? 0 : head.contentLength;
    this.continueDue = head.expectContinue;
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.ctl = c;
        },
        pull: () => {
          if (this.continueDue) {
            this.continueDue = false;
            this.conn.write(CONTINUE);
          }
          this.conn.resumeForBody();
        },
        cancel: () => {
          this.discarding = true;
          this.conn.resumeForBody();
        },
      },
      // No queue wanted: nothing is pulled but by a read, so the first pull is the handler starting to
      // read (when 100 Continue is due); bytes queued past BODY_QUEUE_BYTES stop the socket being read.
      { highWaterMark: 0, size: (c) => c?.byteLength ?? 0 },
    );
  }

  /** Whether the handler's queue is full (the socket should stop being read). */
  get full(): boolean {
    return !this.discarding && !this.done && (this.ctl.desiredSize ?? 0) < -BODY_QUEUE_BYTES;
  }

  /** Bytes still to come when known (a chunked body's total is not). */
  get knownRemaining(): number {
    return this.chunked ? Infinity : this.remaining;
  }

  /** Takes bytes from the socket; returns what is left past the body's end (the next request). */
  feed(b: Buffer): Buffer | undefined {
    if (this.continueDue) this.continueDue = false; // the client sent without waiting
    if (!this.chunked) {
      const n = Math.min(this.remaining, b.length);
      if (n > 0) this.deliver(b.subarray(0, n));
      this.remaining -= n;
      if (this.remaining === 0) this.finish();
      return n < b.length ? b.subarray(n) : undefined;
    }
    let i = 0;
    while (i < b.length && !this.done) {
      switch (this.state) {
        case "size": {
          const nl = b.indexOf(10, i);
          const stop = nl < 0 ? b.length : nl + 1;
          this.line += b.toString("latin1", i, stop);
          i = stop;
          if (this.line.length > MAX_CHUNK_LINE) throw new BadRequest(400, "chunk size line too long");
          if (nl < 0) break;
          this.remaining = chunkSize(this.line);
          this.line = "";
          this.state = this.remaining === 0 ? "trailer" : "data";
          break;
        }
        case "data": {
          const n = Math.min(this.remaining, b.length - i);
          this.deliver(b.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = "data_crlf";
          break;
        }
        case "data_crlf": {
          const nl = b.indexOf(10, i);
          const stop = nl < 0 ? b.length : nl + 1;
          this.line += b.toString("latin1", i, stop);
          i = stop;
          if (this.line.length > 2 || (nl >= 0 && this.line !== "\r\n")) throw new BadRequest(400, "chunk not followed by CRLF");
          if (nl < 0) break;
          this.line = "";
          this.state = "size";
          break;
        }
        case "trailer": {
          const nl = b.indexOf(10, i);
          const stop = nl < 0 ? b.length : nl + 1;
          this.line += b.toString("latin1", i, stop);
          i = stop;
          if (this.line.length > MAX_CHUNK_LINE) throw new BadRequest(400, "trailer line too long");
          if (nl < 0) break;
          const blank = this.line === "\r\n";
          this.line = "";
          if (blank) this.finish();
          break;
        }
      }
    }
    return i < b.length ? b.subarray(i) : undefined;
  }

  /** The body will not be completed: the handler's read fails with `e`. */
  fail(e: Error): void {
    if (this.done) return;
    this.done = true;
    if (!this.discarding) {
      try {
        this.ctl.error(e);
      } catch {}
    }
  }

  private deliver(b: Buffer): void {
    if (this.discarding || b.length === 0) return;
    this.ctl.enqueue(b);
  }

  private finish(): void {
    this.done = true;
    if (!this.discarding) {
      try {
        this.ctl.close();
      } catch {}
    }
  }
}

/** A chunk-size line ("1a;ext=x\r\n"): hex digits, at most 12 of them. */
function chunkSize(line: string): number {
  let end = line.length;
  if (line.charCodeAt(end - 1) === 10) end--;
  if (line.charCodeAt(end - 1) === 13) end--;
  else throw new BadRequest(400, "chunk size line without CR");
  const semi = line.indexOf(";");
  const digits = (semi >= 0 && semi < end ? line.slice(0, semi) : line.slice(0, end)).trimEnd();
  if (digits.length === 0 || digits.length > 12) throw new BadRequest(400, "bad chunk size");
  let n = 0;
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) throw new BadRequest(400, "bad chunk size");
    n = n * 16 + d;
  }
  return n;
}

type Sock = Socket<Conn>;

/** One connection: its unparsed input, the request being answered, and its output not yet taken by the socket. */
class Conn {
  readonly sock: Sock;
  readonly address: string;
  readonly server: ServerState;
  private input: Buffer | undefined;
  /** A request has been handed out and its response is not yet all written. */
  private busy = false;
  private body: BodySink | undefined;
  private readonly out: Uint8Array[] = [];
  private drained: (() => void)[] = [];
  private paused = false;
  private ending = false;
  closed = false;
  /** A write found the socket closed (its close event may not have come yet). */
  private broken = false;
  private seenHead = false;
  private readonly firstDeadline: DeadlineTimer;
  private ac: AbortController | undefined;
  private responseReader: { cancel(reason?: unknown): Promise<void> } | undefined;
  private timeoutChanged = false;
  private readonly exchange: Exchange;

  constructor(sock: Sock, server: ServerState) {
    this.sock = sock;
    this.address = sock.remoteAddress;
    this.server = server;
    this.firstDeadline = deadlineTimer(server.o.firstRequestMs, () => {
      if (!this.seenHead) this.abort();
    });
    sock.timeout(server.o.idleTimeoutS);
    sock.setNoDelay(true);
    this.exchange = {
      address: this.address,
      timeout: (s) => {
        this.timeoutChanged = true;
        this.sock.timeout(s);
      },
    };
  }

  onData(chunk: Buffer): void {
    if (this.ending || this.closed) return;
    try {
      if (this.body && !this.body.done) {
        const rest = this.body.feed(chunk);
        if (rest) this.input = this.input ? Buffer.concat([this.input, rest]) : rest;
        if (this.body.full) this.pause();
      } else this.input = this.input ? Buffer.concat([this.input, chunk]) : chunk;
    } catch (e) {
      this.body?.fail(e as Error);
      this.refuseAndClose(e);
      return;
    }
    this.pump();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.firstDeadline.cancel();
    this.ac?.abort(new DOMException("the client closed the connection", "AbortError"));
    this.body?.fail(new Error("the client closed the connection"));
    this.responseReader?.cancel(new Error("the client closed the connection")).catch(() => {});
    for (const f of this.drained.splice(0)) f();
    this.server.hooks.closed(this.address);
  }

  onDrain(): void {
    while (this.out.length > 0) {
      const b = this.out[0]!;
      const n = this.sock.write(b);
      if (n < 0) return;
      if (n < b.length) {
        this.out[0] = b.subarray(n);
        return;
      }
      this.out.shift();
    }
    if (this.ending) this.sock.end();
    for (const f of this.drained.splice(0)) f();
  }

  write(b: Uint8Array): void {
    if (this.closed) return;
    if (this.out.length > 0) {
      this.out.push(b);
      return;
    }
    const n = this.sock.write(b);
    if (n < 0) this.broken = true;
    else if (n < b.length) this.out.push(b.subarray(n));
  }

  /** Writes `head` (latin1) and `body` in one write, through a scratch buffer when they fit. */
  writeJoined(head: string, body: Uint8Array): void {
    const n = head.length + body.length;
    if (n > scratch.length || this.out.length > 0 || this.closed) {
      const out = Buffer.allocUnsafe(n);
      out.write(head, 0, "latin1");
      out.set(body, head.length);
      this.write(out);
      return;
    }
    scratch.write(head, 0, "latin1");
    scratch.set(body, head.length);
    const w = this.sock.write(scratch, 0, n);
    if (w < 0) this.broken = true;
    else if (w < n) this.out.push(Buffer.from(scratch.subarray(w, n)));
  }

  /** Closes once what is written has gone. */
  endAfterWrites(): void {
    this.ending = true;
    if (this.out.length === 0) this.sock.end();
  }

  abort(): void {
    this.sock.terminate();
  }

  /** Closes the connection now if no request is being answered; else it closes after its response. */
  closeIfIdle(): void {
    if (!this.busy) this.abort();
  }

  resumeForBody(): void {
    if (this.paused && !(this.body?.full ?? false)) {
      this.paused = false;
      this.sock.resume();
    }
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.sock.pause();
    }
  }

  private refuseAndClose(e: unknown): void {
    const status = e instanceof BadRequest ? e.status : 400;
    if (!this.busy) this.write(plainResponse(status, e instanceof Error ? e.message : "bad request"));
    // A request being answered keeps its response; the connection closes when it is written.
    if (!this.busy) this.endAfterWrites();
    else this.ending = true;
    this.input = undefined;
  }

  /** Takes the next request from the input, if there is a whole head and nothing in progress. */
  private pump(): void {
    const max = this.server.o.maxHeadBytes;
    while (!this.busy && !this.ending && !this.closed && this.input !== undefined) {
      const input = this.input;
      const at = input.indexOf(CRLF2);
      if (at < 0 || at + 4 > max) {
        if (input.length > max || at >= 0) this.refuseAndClose(new BadRequest(431, "request head too large"));
        return;
      }
      let head: Head;
      try {
        head = parseHead(input.toString("latin1", 0, at));
      } catch (e) {
        this.refuseAndClose(e);
        return;
      }
      if (!this.seenHead) {
        this.seenHead = true;
        this.firstDeadline.cancel();
      }
      let rest: Buffer | undefined = at + 4 < input.length ? input.subarray(at + 4) : undefined;
      let body: BodySink | undefined;
      let whole: Uint8Array | undefined;
      if (!head.chunked && head.contentLength > 0 && rest !== undefined && rest.length >= head.contentLength) {
        // The usual small body, here whole: given as bytes, which the handler reads far cheaper than a stream.
        whole = rest.subarray(0, head.contentLength);
        rest = rest.length > head.contentLength ? rest.subarray(head.contentLength) : undefined;
      } else if (head.chunked || head.contentLength > 0) {
        body = new BodySink(this, head);
        if (rest) {
          try {
            rest = body.feed(rest);
          } catch (e) {
            this.refuseAndClose(e);
            return;
          }
        }
      }
      this.input = rest;
      this.body = body;
      this.busy = true;
      if (body?.full) this.pause();
      void this.answer(head, body, whole);
    }
    // Pipelined requests wait in the input while one is answered; it may not grow without bound.
    if (this.busy && this.input !== undefined && this.input.length > max && (this.body === undefined || this.body.done)) this.pause();
  }

  private request(head: Head, body: BodySink | undefined, whole: Uint8Array | undefined): Request {
    const t = head.target;
    const url =
      t.charCodeAt(0) === 47 ? `${this.server.scheme}://${head.host ?? this.server.authority}${t}` : t.startsWith("http") ? t : undefined;
    if (url === undefined) throw new BadRequest(400, "bad request target");
    this.ac ??= new AbortController();
    const init: RequestInit & { duplex?: string } = { method: head.method, headers: head.headers, signal: this.ac.signal };
    if (body) {
      init.body = body.stream;
      init.duplex = "half";
    } else if (whole) init.body = whole;
    return new Request(url, init);
  }

  private async answer(head: Head, body: BodySink | undefined, whole: Uint8Array | undefined): Promise<void> {
    let res: Response;
    let req: Request | undefined;
    try {
      req = this.request(head, body, whole);
    } catch (e) {
      body?.fail(e as Error);
      this.busy = false;
      this.refuseAndClose(e instanceof BadRequest ? e : new BadRequest(400, (e as Error).message));
      return;
    }
    try {
      const r = this.server.hooks.fetch(req, this.exchange);
      res = r instanceof Promise ? await r : r;
    } catch {
      res = new Response("Internal Server Error\n", { status: 500 });
    }
    if (this.closed) {
      res.body?.cancel().catch(() => {});
      return;
    }
    let keepAlive = head.keepAlive && !this.ending;
    // A body the handler did not read: dropped when little is left, else the connection closes.
    if (body && !body.done) {
      if (body.knownRemaining > MAX_DISCARD_BYTES) keepAlive = false;
      else {
        body.discarding = true;
        body.stream.cancel().catch(() => {});
        this.resumeForBody();
      }
    }
    try {
      const w = this.writeResponse(head, res, keepAlive);
      keepAlive = typeof w === "boolean" ? w : await w;
    } catch {
      this.abort();
      return;
    }
    if (this.closed) return;
    if (this.timeoutChanged) {
      this.timeoutChanged = false;
      this.sock.timeout(this.server.o.idleTimeoutS);
    }
    if (!keepAlive || this.ending || this.server.stopping) {
      this.endAfterWrites();
      return;
    }
    this.busy = false;
    if (this.body?.done) this.body = undefined;
    // A body still being dropped goes on in onData; the next request starts after it.
    this.resumeForBody();
    this.pump();
  }

  /**
   * Writes `res`; returns whether the connection may carry another request. A body the handler gave a
   * Content-Length or `Transfer-Encoding: chunked` is streamed as the socket drains; any other is read
   * whole first (a string, bytes or a blob is in memory already), to go out in one write with its length.
   */
  private writeResponse(head: Head, res: Response, keepAlive: boolean): boolean | Promise<boolean> {
    const status = res.status;
    let h = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
    let length: string | null = null;
    let chunked = false;
    let typed = false;
    res.headers.forEach((v, k) => {
      if (k === "content-length") length = v;
      else if (k === "transfer-encoding") chunked = true;
      else if (k === "connection") {
        if (v.toLowerCase().includes("close")) keepAlive = false;
      } else if (k !== "date") {
        if (k === "content-type") typed = true;
        h += `${k}: ${v}\r\n`;
      }
    });
    h += `date: ${httpDate()}\r\n`;
    const connection = () => (!keepAlive ? "connection: close\r\n" : head.http10 ? "connection: keep-alive\r\n" : "");
    const noBody = status === 204 || status === 304 || status < 200;
    if (head.method === "HEAD" || noBody) {
      if (res.body !== null) res.body.cancel().catch(() => {});
      // A HEAD response's length is the one the handler gave, if any: its body is not read to learn it.
      if (!noBody && (length !== null || head.method !== "HEAD")) h += `content-length: ${length ?? "0"}\r\n`;
      this.write(Buffer.from(`${h}${connection()}\r\n`, "latin1"));
      return keepAlive;
    }
    if (length === null && !chunked) {
      // Read whole (at once when in memory, as it usually is) and sent in one write with its length.
      const whole = (b: Uint8Array, type: string | undefined): boolean => {
        if (type) h += `content-type: ${type}\r\n`;
        h += `${connection()}content-length: ${b.length}\r\n\r\n`;
        this.writeJoined(h, b);
        return keepAlive;
      };
      if (typed) {
        const p = res.bytes();
        return Bun.peek.status(p) === "fulfilled" ? whole(Bun.peek(p) as Uint8Array, undefined) : p.then((b) => whole(b, undefined));
      }
      const p = res.blob();
      if (Bun.peek.status(p) === "fulfilled") {
        const blob = Bun.peek(p) as Blob;
        const q = blob.bytes();
        if (Bun.peek.status(q) === "fulfilled") return whole(Bun.peek(q) as Uint8Array, blob.type);
      }
      return p.then(async (blob) => whole(await blob.bytes(), blob.type));
    }
    return this.writeStreamed(head, res, h, length, keepAlive);
  }

  private async writeStreamed(head: Head, res: Response, h: string, length: string | null, keepAlive: boolean): Promise<boolean> {
    // To an HTTP/1.0 client a body without a length ends with the connection.
    if (length === null && head.http10) keepAlive = false;
    const raw = length !== null || head.http10;
    h += !keepAlive ? "connection: close\r\n" : head.http10 ? "connection: keep-alive\r\n" : "";
    h += length !== null ? `content-length: ${length}\r\n` : raw ? "" : "transfer-encoding: chunked\r\n";
    this.write(Buffer.from(`${h}\r\n`, "latin1"));
    if (res.body === null) return keepAlive;
    const reader = res.body.getReader();
    this.responseReader = reader;
    try {
      for (;;) {
        if (this.out.length > 0) await new Promise<void>((r) => this.drained.push(r));
        if (this.closed) return false;
        if (this.broken) {
          await reader.cancel(new Error("the client closed the connection")).catch(() => {});
          throw new Error("the client closed the connection");
        }
        const r = await reader.read();
        if (r.done) break;
        const b = r.value;
        if (b.length === 0) continue;
        if (raw) {
          this.write(b);
          continue;
        }
        const size = `${b.length.toString(16)}\r\n`;
        const out = Buffer.allocUnsafe(size.length + b.length + 2);
        out.write(size, 0, "latin1");
        out.set(b, size.length);
        out[out.length - 2] = 13;
        out[out.length - 1] = 10;
        this.write(out);
      }
      if (!raw) this.write(LAST_CHUNK);
      return keepAlive;
    } finally {
      this.responseReader = undefined;
    }
  }
}

interface ServerState {
  stopping: boolean;
  /** Waiting for the last connection to close. */
  drained: (() => void)[];
  o: Http1Options;
  hooks: Http1Hooks;
  scheme: string;
  authority: string;
  conns: Set<Conn>;
}

export function listenHttp1(o: Http1Options, hooks: Http1Hooks): Http1Server {
  assert(o.maxHeadBytes > 0 && o.firstRequestMs > 0, "http1: bounds must be positive");
  const state: ServerState = {
    stopping: false,
    drained: [],
    o,
    hooks,
    scheme: o.tls ? "https" : "http",
    authority: `${o.hostname}:${o.port}`,
    conns: new Set(),
  };
  const handlers = {
    open(sock: Sock) {
      const refusal = hooks.admit(sock.remoteAddress);
      if (refusal) {
        // Half-closed, so a request already on its way is read and dropped rather than reset (which
        // could discard the refusal before the client reads it); a client that keeps its side open is
        // cut at the next timeout tick.
        sock.end(refusal);
        sock.timeout(1);
        return;
      }
      const c = new Conn(sock, state);
      sock.data = c;
      state.conns.add(c);
    },
    data(sock: Sock, chunk: Buffer) {
      sock.data?.onData(chunk);
    },
    drain(sock: Sock) {
      sock.data?.onDrain();
    },
    close(sock: Sock) {
      const c = sock.data;
      if (!c) return;
      state.conns.delete(c);
      c.onClose();
      if (state.conns.size === 0) for (const f of state.drained.splice(0)) f();
    },
    timeout(sock: Sock) {
      if (sock.data) sock.data.abort();
      else sock.terminate();
    },
    error(sock: Sock) {
      sock.data?.abort();
    },
  };
  const listener = Bun.listen<Conn>({
    hostname: o.hostname,
    port: o.port,
    socket: handlers as never,
    ...(o.tls ? { tls: o.tls as never } : {}),
  });
  state.authority = `${o.hostname}:${listener.port}`;
  return {
    port: listener.port,
    async stop(closeActive) {
      state.stopping = true;
      listener.stop(false);
      for (const c of state.conns) {
        if (closeActive) c.abort();
        else c.closeIfIdle();
      }
      if (state.conns.size > 0) await new Promise<void>((r) => state.drained.push(r));
    },
  };
}
