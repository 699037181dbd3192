// StageFanout (stage_fanout.ts), the leader's streams to its staging peers: from the leader's commit each
// peer has the staging deadline for everything left, the bytes it has not taken yet included, so a peer
// that stopped reading (frozen) can hold neither its stream nor the leader's wait for a quorum for ever.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "../../src/lib/codec.ts";
import { EdgeError } from "../../src/lib/errors.ts";
import { createLogger, silentLogger } from "../../src/lib/logger.ts";
import { GrowingFile } from "../../src/server/growing_file.ts";
import { StageFanout } from "../../src/server/stage_fanout.ts";
import { SpoolThrough } from "../../src/server/staged_snapshots.ts";
import type { RpcStream } from "../../src/transport/rpc_stream.ts";

const root = mkdtempSync(join(tmpdir(), "edgenode-fanout-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A peer that never takes a byte: every send waits until the stream is aborted. */
function frozenPeer(aborted: string[]): RpcStream {
  let fail: ((e: Error) => void) | undefined;
  const stuck = new Promise<void>((_, reject) => {
    fail = reject;
  });
  stuck.catch(() => undefined);
  return {
    send: () => stuck,
    end: () => stuck,
    abort: (_code: string, message: string) => {
      aborted.push(message);
      fail?.(new EdgeError("ABORTED", message));
    },
    [Symbol.asyncIterator]: () => ({ next: () => stuck.then(() => ({ done: true, value: undefined })) }),
  } as unknown as RpcStream;
}

/** A peer that takes every byte and answers with what it was sent. */
function goodPeer(): RpcStream {
  let size = 0;
  const hasher = new Bun.CryptoHasher("sha256");
  return {
    send: async (c: Uint8Array) => {
      size += c.byteLength;
      hasher.update(c);
    },
    end: async () => {},
    abort: () => {},
    async *[Symbol.asyncIterator]() {
      yield encode({ Size: size, Sha256: hasher.digest("hex") });
    },
  } as unknown as RpcStream;
}

test("a frozen peer and a dead one: the quorum wait ends at the staging deadline with too few, and the frozen peer's stream is aborted", async () => {
  const path = join(root, "spool");
  const file = new GrowingFile(path);
  const sp = await SpoolThrough.create(path, (size) => file.grew(size));
  const aborted: string[] = [];
  const lines: string[] = [];
  const log = createLogger({ level: "INFO", write: (l) => lines.push(l) });
  const servers = [
    { id: "a", address: "a:1", voter: true },
    { id: "b", address: "b:1", voter: true },
    { id: "c", address: "c:1", voter: true },
  ];
  const fanout = new StageFanout(
    {
      log,
      selfId: () => "a",
      servers: () => servers,
      openStream: async (addr) => {
        if (addr === "c:1") throw new EdgeError("UNAVAILABLE", "connection refused");
        return frozenPeer(aborted);
      },
    },
    "00000000-0000-4000-8000-000000000001",
    file,
    { minTimeoutMs: 50 },
  );
  const body = new Uint8Array(1 << 20).fill(7);
  for await (const _ of sp.through(
    (async function* () {
      yield body;
    })(),
  )) {
    // written to the spool, and so to the readers
  }
  const size = await sp.finish();
  file.end(size);
  fanout.commit(size);
  const sha = new Bun.CryptoHasher("sha256").update(body).digest("hex");
  const r = await fanout.quorum({ Size: size, Sha256: sha });
  expect(r).toEqual({ ok: 1, voters: 3, quorum: 2 });
  expect(aborted.some((m) => /timed out/.test(m))).toBe(true);
  expect(lines.join("\n")).toMatch(/staging on a peer failed.*b:1.*timed out/);
});

test("a peer that answers with the leader's size and digest counts towards the quorum; the frozen one does not hold it", async () => {
  const path = join(root, "spool2");
  const file = new GrowingFile(path);
  const sp = await SpoolThrough.create(path, (size) => file.grew(size));
  const aborted: string[] = [];
  const log = silentLogger();
  const fanout = new StageFanout(
    {
      log,
      selfId: () => "a",
      servers: () => [
        { id: "a", address: "a:1", voter: true },
        { id: "b", address: "b:1", voter: true },
        { id: "c", address: "c:1", voter: true },
      ],
      openStream: async (addr) => (addr === "b:1" ? frozenPeer(aborted) : goodPeer()),
    },
    "00000000-0000-4000-8000-000000000002",
    file,
    { minTimeoutMs: 60_000 },
  );
  const body = new Uint8Array(300_000).fill(3);
  for await (const _ of sp.through(
    (async function* () {
      yield body;
    })(),
  )) {
    // spooled
  }
  const size = await sp.finish();
  file.end(size);
  fanout.commit(size);
  const sha = new Bun.CryptoHasher("sha256").update(body).digest("hex");
  expect(await fanout.quorum({ Size: size, Sha256: sha })).toEqual({ ok: 2, voters: 3, quorum: 2 });
  fanout.abort(new EdgeError("ABORTED", "test over"));
});
