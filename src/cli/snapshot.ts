// `node operator snapshot save|restore|inspect`: download a snapshot to a checked file, upload one for
// restore (streamed from disk, never read whole), and describe one offline.
import { link, open, rm, stat } from "node:fs/promises";
import { snapshotRestore, snapshotSave } from "../api/snapshot.ts";
import { fileChunks, verifySnapshotFile } from "../snapshot/reader.ts";
import { formatInspect, inspectSnapshotFile } from "../snapshot/inspect.ts";
import { clientFromFlags, withClientFlags } from "./client_flags.ts";
import { bool, CliError, type Command, type Io } from "./command.ts";
import { runOfflineRestore } from "./offline_restore.ts";
import { OFFLINE_TARGET_FLAGS } from "./offline_target.ts";
import { progressLine } from "./progress.ts";
import { formatKv, formatTable } from "./table.ts";

/** `edgenode-state-YYYYMMDD-<unix>.snap`, the date in UTC like the unix time beside it. */
export function defaultSnapshotName(now = new Date()): string {
  const d = now.toISOString().slice(0, 10).replaceAll("-", "");
  return `edgenode-state-${d}-${Math.floor(now.getTime() / 1000)}.snap`;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Downloads into FILE.tmp (mode 0600), checks the Digest header and the file's own checksum, then links it to FILE. */
export async function saveSnapshot(
  io: Io,
  client: Awaited<ReturnType<typeof clientFromFlags>>,
  file: string,
  stale: boolean,
): Promise<number> {
  const doing = "saving the snapshot";
  if (await exists(file)) throw new CliError(`Error ${doing}: ${file} already exists; refusing to overwrite it`);
  const tmp = `${file}.tmp`;
  // Ctrl-C ends the download through the abort path, so the .tmp is removed rather than left behind.
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await download(io, client, file, tmp, stale, abort.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function download(
  io: Io,
  client: Awaited<ReturnType<typeof clientFromFlags>>,
  file: string,
  tmp: string,
  stale: boolean,
  signal: AbortSignal,
): Promise<number> {
  const doing = "saving the snapshot";
  const dl = await snapshotSave(client, { stale, signal });
  let fh;
  try {
    // A .tmp left by an interrupted save is ours to replace; "wx" then guarantees mode 0600 on a new file.
    await rm(tmp, { force: true });
    fh = await open(tmp, "wx", 0o600);
  } catch (e) {
    await dl.body.cancel().catch(() => {});
    throw new CliError(`Error ${doing}: cannot create ${tmp}: ${(e as Error).message}`);
  }
  const hasher = new Bun.CryptoHasher("sha256");
  const progress = progressLine(io, "Downloaded");
  let bytes = 0;
  let ok = false;
  try {
    try {
      for await (const chunk of dl.body) {
        hasher.update(chunk);
        let at = 0;
        while (at < chunk.byteLength) {
          const { bytesWritten } = await fh.write(chunk, at, chunk.byteLength - at);
          at += bytesWritten;
        }
        bytes += chunk.byteLength;
        progress.add(chunk.byteLength);
      }
    } catch (e) {
      if (signal.aborted) throw new CliError(`Error ${doing}: interrupted after ${bytes} bytes; removed ${tmp}`);
      throw new CliError(`Error ${doing}: the download failed after ${bytes} bytes: ${(e as Error).message}`);
    } finally {
      progress.done();
    }
    await fh.datasync();
    await fh.close();
    fh = undefined;
    if (dl.size !== undefined && dl.size !== bytes) {
      throw new CliError(`Error ${doing}: the download is incomplete: received ${bytes} of ${dl.size} bytes`);
    }
    const got = hasher.digest("base64");
    if (got !== dl.digest) {
      throw new CliError(
        `Error ${doing}: the download does not match its Digest header (server sha-256=${dl.digest}, received sha-256=${got}, ${bytes} bytes): it is corrupt or incomplete`,
      );
    }
    let v;
    try {
      v = await verifySnapshotFile(tmp);
    } catch (e) {
      throw new CliError(`Error ${doing}: the downloaded file failed verification: ${(e as Error).message}`);
    }
    if (v.header.index !== dl.index) {
      throw new CliError(`Error ${doing}: the file holds index ${v.header.index} but the server announced index ${dl.index}`);
    }
    try {
      // link, unlike rename, fails when FILE appeared meanwhile: never overwrite.
      await link(tmp, file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CliError(
        code === "EEXIST"
          ? `Error ${doing}: ${file} already exists; refusing to overwrite it`
          : `Error ${doing}: cannot create ${file}: ${(e as Error).message}`,
      );
    }
    ok = true;
    await rm(tmp, { force: true });
    io.out(`State file written to ${file} (index ${dl.index})`);
    return 0;
  } finally {
    if (fh) await fh.close().catch(() => {});
    if (!ok) await rm(tmp, { force: true }).catch(() => {});
  }
}

export const snapshotSaveCommand: Command = {
  path: ["operator", "snapshot", "save"],
  synopsis: "Download a snapshot of the cluster's state",
  usage: "[options] [FILE]",
  doing: "saving the snapshot",
  flags: withClientFlags([
    { name: "stale", kind: "bool", help: "Let the server answering take the snapshot even if it is not the leader." },
  ]),
  async run(f, io) {
    if (f.args.length > 1) throw new CliError(`Error saving the snapshot: expected at most one argument, FILE (got ${f.args.length})`);
    const file = f.args[0] ?? defaultSnapshotName();
    const client = await clientFromFlags(f);
    return saveSnapshot(io, client, file, bool(f, "stale"));
  },
};

/** A pull stream over the file's chunks: one chunk read per chunk the upload asks for. */
export function fileUploadStream(path: string, onChunk: (n: number) => void): ReadableStream<Uint8Array> {
  const it = fileChunks(path);
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        const r = await it.next();
        if (r.done) ctl.close();
        else {
          onChunk(r.value.byteLength);
          ctl.enqueue(r.value);
        }
      },
      async cancel() {
        await it.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

/** What a dry run reports: scalars as label = value, objects (counts per table) as a table. */
export function formatDryRun(reply: Record<string, unknown>): string {
  const scalars: [string, string][] = [];
  const tables: string[] = [];
  for (const [k, v] of Object.entries(reply)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const rows = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b));
      tables.push(formatTable([[k, "Records"], ...rows.map(([n, c]) => [n, String(c)])]));
    } else {
      scalars.push([k, Array.isArray(v) ? v.join(", ") : String(v)]);
    }
  }
  return ["Snapshot verified; nothing was changed. A restore would install:", formatKv(scalars), ...tables]
    .filter((s) => s !== "")
    .join("\n\n");
}

export const snapshotRestoreCommand: Command = {
  path: ["operator", "snapshot", "restore"],
  synopsis: "Restore the cluster's state from a snapshot file",
  usage: "[options] FILE | -offline (-data-dir DIR | -config PATH) FILE",
  doing: "restoring the snapshot",
  flags: withClientFlags([
    { name: "dry-run", kind: "bool", help: "Have the servers verify the file and report what it holds, changing nothing." },
    {
      name: "offline",
      kind: "bool",
      help: "No agent: seed the empty data directory of a stopped server from FILE, as a new one-server cluster.",
    },
    ...OFFLINE_TARGET_FLAGS,
    { name: "advertise", kind: "string", arg: "HOST:PORT", help: "With -offline and no -config: the server's RPC address." },
  ]),
  async run(f, io) {
    if (f.args.length !== 1) throw new CliError(`Error restoring the snapshot: expected exactly one argument, FILE (got ${f.args.length})`);
    const file = f.args[0]!;
    if (bool(f, "offline")) return runOfflineRestore(f, io, file);
    for (const name of ["data-dir", "config", "advertise"])
      if (f.set.has(name)) throw new CliError(`Error restoring the snapshot: -${name} is only for -offline`);
    let st;
    try {
      st = await stat(file);
    } catch (e) {
      throw new CliError(`Error restoring the snapshot: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!st.isFile()) throw new CliError(`Error restoring the snapshot: ${file} is not a regular file`);
    const client = await clientFromFlags(f);
    const dryRun = bool(f, "dry-run");
    const progress = progressLine(io, "Uploaded");
    let reply;
    try {
      reply = await snapshotRestore(
        client,
        fileUploadStream(file, (n) => progress.add(n)),
        { dryRun },
      );
    } finally {
      progress.done();
    }
    if (dryRun) {
      io.out(formatDryRun(reply));
      return 0;
    }
    if (typeof reply.Index !== "number")
      throw new CliError(`Error restoring the snapshot: the server's answer has no Index: ${JSON.stringify(reply).slice(0, 200)}`);
    io.out(`Snapshot restored (index ${reply.Index})`);
    return 0;
  },
};

export const snapshotInspectCommand: Command = {
  path: ["operator", "snapshot", "inspect"],
  synopsis: "Verify a snapshot file offline and describe it",
  usage: "FILE",
  doing: "inspecting the snapshot",
  flags: [],
  async run(f, io) {
    if (f.args.length !== 1)
      throw new CliError(`Error inspecting the snapshot: expected exactly one argument, FILE (got ${f.args.length})`);
    const r = await inspectSnapshotFile(f.args[0]!);
    io.out(formatInspect(r).trimEnd());
    return 0;
  },
};
