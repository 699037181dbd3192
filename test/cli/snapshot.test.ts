// operator snapshot save/restore against fake servers (good, wrong Digest, truncated, corrupt, refused),
// and inspect offline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/cli/cli.ts";
import { defaultSnapshotName } from "../../src/cli/snapshot.ts";
import { writeSnapshotFile } from "../../src/snapshot/writer.ts";
import { header, textPool, variableRecords } from "../snapshot/fixture.ts";
import { captureIo } from "./capture_io.ts";

const dir = mkdtempSync(join(tmpdir(), "edgenode-cli-snap-"));
let good: Uint8Array;
let goodPath: string;
const b64 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("base64");

type Mode = "good" | "wrong-digest" | "consistent-truncation" | "index-mismatch" | "denied" | "no-digest";
let mode: Mode = "good";
let saveServer: ReturnType<typeof Bun.serve>;
let truncServer: Bun.TCPSocketListener<undefined>;

interface Upload {
  bytes: number;
  sha: string;
  search: string;
  token: string | null;
}
const uploads: Upload[] = [];
let restoreServer: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  const { counts, records } = variableRecords(2000, textPool(7));
  goodPath = join(dir, "fixture.snap");
  await writeSnapshotFile(goodPath, header(counts), records());
  good = new Uint8Array(readFileSync(goodPath));
  expect(good.byteLength).toBeGreaterThan(64 << 10);

  saveServer = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/v1/operator/snapshot" || req.method !== "GET") return new Response("nope", { status: 404 });
      const headers: Record<string, string> = {
        "Content-Type": "application/octet-stream",
        Digest: `sha-256=${b64(good)}`,
        "X-Edgenode-Index": "19",
      };
      switch (mode) {
        case "good":
          return new Response(good, { headers });
        case "wrong-digest":
          return new Response(good, { headers: { ...headers, Digest: `sha-256=${b64(new Uint8Array([1, 2, 3]))}` } });
        case "consistent-truncation": {
          // The digest matches what is sent; only the file's own checksum can tell it is cut short.
          const half = good.slice(0, good.byteLength >> 1);
          return new Response(half, { headers: { ...headers, Digest: `sha-256=${b64(half)}` } });
        }
        case "index-mismatch":
          return new Response(good, { headers: { ...headers, "X-Edgenode-Index": "20" } });
        case "denied":
          return new Response("Permission denied", { status: 403 });
        case "no-digest":
          return new Response(good, { headers: { "X-Edgenode-Index": "19" } });
      }
    },
  });

  // Announces the whole length and the right digest, sends half, and hangs up.
  truncServer = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s) {
        const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${good.byteLength}\r\nDigest: sha-256=${b64(good)}\r\nX-Edgenode-Index: 19\r\nConnection: close\r\n\r\n`;
        s.write(head);
        s.write(good.slice(0, 10_000));
        s.flush();
        setTimeout(() => s.end(), 50);
      },
    },
  });

  restoreServer = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/v1/operator/snapshot" || req.method !== "PUT") return new Response("nope", { status: 405 });
      const h = new Bun.CryptoHasher("sha256");
      let bytes = 0;
      for await (const chunk of req.body!) {
        h.update(chunk);
        bytes += chunk.byteLength;
      }
      const sha = h.digest("base64");
      uploads.push({ bytes, sha, search: url.search, token: req.headers.get("x-edgenode-token") });
      if (sha !== b64(good)) return new Response("invalid snapshot: checksum mismatch", { status: 400 });
      if (url.searchParams.has("dry-run"))
        return Response.json({ Index: 19, Term: 2, Region: "global", Producer: "0.1.0-test", Counts: { vars: 2000 } });
      return Response.json({ Index: 77 });
    },
  });
});

afterAll(() => {
  saveServer?.stop(true);
  truncServer?.stop(true);
  restoreServer?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

async function save(file: string | undefined, addr = `http://127.0.0.1:${saveServer.port}`, extra: string[] = []) {
  const io = captureIo({ EDGENODE_ADDR: addr });
  const code = await runCli(["operator", "snapshot", "save", ...extra, ...(file ? [file] : [])], io);
  return { code, out: io.stdout(), err: io.stderr() };
}

function expectNoFiles(file: string) {
  expect(existsSync(file)).toBe(false);
  expect(existsSync(`${file}.tmp`)).toBe(false);
}

describe("operator snapshot save", () => {
  test("writes the file with mode 0600 and prints only the result", async () => {
    const file = join(dir, "ok.snap");
    const r = await save(file);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toBe(`State file written to ${file} (index 19)`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.compare(readFileSync(file), Buffer.from(good))).toBe(0);
    expect(existsSync(`${file}.tmp`)).toBe(false);
  });

  test("refuses to overwrite an existing file and leaves it alone", async () => {
    const file = join(dir, "exists.snap");
    writeFileSync(file, "keep me");
    const r = await save(file);
    expect(r.code).toBe(1);
    expect(r.err).toContain("Error saving the snapshot:");
    expect(r.err).toContain("already exists");
    expect(readFileSync(file, "utf8")).toBe("keep me");
    expect(r.out).toBe("");
  });

  test("a wrong Digest fails and leaves no file", async () => {
    mode = "wrong-digest";
    try {
      const file = join(dir, "wrong.snap");
      const r = await save(file);
      expect(r.code).toBe(1);
      expect(r.err).toContain("does not match its Digest header");
      expectNoFiles(file);
    } finally {
      mode = "good";
    }
  });

  test("a body cut short against its Content-Length fails and leaves no file", async () => {
    const file = join(dir, "trunc.snap");
    const r = await save(file, `http://127.0.0.1:${truncServer.port}`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Error saving the snapshot: the (download failed after|download is incomplete|download does not match)/);
    expectNoFiles(file);
  });

  test("a truncated file whose Digest matches is caught by the file's own checksum", async () => {
    mode = "consistent-truncation";
    try {
      const file = join(dir, "half.snap");
      const r = await save(file);
      expect(r.code).toBe(1);
      expect(r.err).toContain("the downloaded file failed verification");
      expectNoFiles(file);
    } finally {
      mode = "good";
    }
  });

  test("an index header that disagrees with the file is refused", async () => {
    mode = "index-mismatch";
    try {
      const file = join(dir, "idx.snap");
      const r = await save(file);
      expect(r.code).toBe(1);
      expect(r.err).toContain("holds index 19 but the server announced index 20");
      expectNoFiles(file);
    } finally {
      mode = "good";
    }
  });

  test("a missing Digest header and a refused request are errors", async () => {
    mode = "no-digest";
    try {
      const r = await save(join(dir, "nodigest.snap"));
      expect(r.code).toBe(1);
      expect(r.err).toContain('no "Digest: sha-256=..." header');
    } finally {
      mode = "denied";
    }
    try {
      const r = await save(join(dir, "denied.snap"));
      expect(r.code).toBe(1);
      expect(r.err).toBe("Error saving the snapshot: Unexpected response code: 403 (Permission denied)");
      expectNoFiles(join(dir, "denied.snap"));
    } finally {
      mode = "good";
    }
  });

  test("without FILE it picks edgenode-state-YYYYMMDD-<unix>.snap in the working directory", async () => {
    expect(defaultSnapshotName(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe(
      `edgenode-state-20260102-${Date.UTC(2026, 0, 2, 3, 4, 5) / 1000}.snap`,
    );
    const sub = mkdtempSync(join(dir, "cwd-"));
    const old = process.cwd();
    process.chdir(sub);
    try {
      const r = await save(undefined);
      expect(r.code).toBe(0);
      const files = readdirSync(sub);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^edgenode-state-\d{8}-\d+\.snap$/);
      expect(r.out).toBe(`State file written to ${files[0]} (index 19)`);
    } finally {
      process.chdir(old);
    }
  });

  test("an unreachable agent: exit 1, message names the address", async () => {
    const r = await save(join(dir, "x.snap"), "http://127.0.0.1:1");
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot reach the agent at http://127.0.0.1:1");
  });
});

describe("operator snapshot restore", () => {
  const restore = async (args: string[], env: Record<string, string> = {}) => {
    const io = captureIo({ EDGENODE_ADDR: `http://127.0.0.1:${restoreServer.port}`, ...env });
    const code = await runCli(["operator", "snapshot", "restore", ...args], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };

  test("streams the whole file and prints the restore's index", async () => {
    const r = await restore([goodPath], { EDGENODE_TOKEN: "mgmt" });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toBe("Snapshot restored (index 77)");
    const u = uploads[uploads.length - 1]!;
    expect(u.bytes).toBe(good.byteLength);
    expect(u.sha).toBe(b64(good));
    expect(u.token).toBe("mgmt");
    expect(u.search).toBe("");
  });

  test("-dry-run prints what the server would restore", async () => {
    const r = await restore(["-dry-run", goodPath]);
    expect(r.code).toBe(0);
    expect(uploads[uploads.length - 1]!.search).toBe("?dry-run");
    expect(r.out).toContain("nothing was changed");
    expect(r.out).toMatch(/Index\s+= 19/);
    expect(r.out).toMatch(/vars\s+2000/);
  });

  test("the server's refusal is shown with exit 1", async () => {
    const bad = join(dir, "bad.snap");
    const b = good.slice();
    b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
    writeFileSync(bad, b);
    const r = await restore([bad]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("Error restoring the snapshot: Unexpected response code: 400 (invalid snapshot: checksum mismatch)");
    expect(r.out).toBe("");
  });

  test("a missing file or missing argument is an error before any request", async () => {
    const before = uploads.length;
    const r = await restore([join(dir, "nope.snap")]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot read");
    expect(r.err).toContain("ENOENT");
    const r2 = await restore([]);
    expect(r2.code).toBe(1);
    expect(r2.err).toContain("expected exactly one argument");
    expect(uploads.length).toBe(before);
  });
});

describe("operator snapshot inspect", () => {
  test("describes a valid file offline", async () => {
    const io = captureIo({ EDGENODE_ADDR: "http://127.0.0.1:1" });
    expect(await runCli(["operator", "snapshot", "inspect", goodPath], io)).toBe(0);
    expect(io.stdout()).toMatch(/^ID\s+2-19-1592495928936$/m);
    expect(io.stdout()).toMatch(/^Index\s+19$/m);
    expect(io.stdout()).toMatch(/^vars\s+2000$/m);
    expect(io.stderr()).toBe("");
  });

  test("a truncated file fails with exit 1", async () => {
    const cut = join(dir, "cut.snap");
    writeFileSync(cut, good.slice(0, good.byteLength - 5));
    const io = captureIo();
    expect(await runCli(["operator", "snapshot", "inspect", cut], io)).toBe(1);
    expect(io.stderr()).toStartWith("Error inspecting the snapshot: ");
    expect(io.stdout()).toBe("");
  });
});
