// A dev agent run from source on free ports, for tests that need a real server.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = join(import.meta.dir, "..", "..");

export { freePort };

export interface DevAgent {
  address: string;
  proc: ReturnType<typeof Bun.spawn>;
  stop(): Promise<void>;
}

export async function startDevAgent(): Promise<DevAgent> {
  const dir = mkdtempSync(join(tmpdir(), "edgenode-cli-test-"));
  const http = freePort();
  const rpc = freePort();
  const cfg = join(dir, "ports.hcl");
  writeFileSync(cfg, `ports {\n  http = ${http}\n  rpc = ${rpc}\n}\n`);
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "agent", "-dev", "-config", cfg], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
  });
  const address = `http://127.0.0.1:${http}`;
  // Drain the logs so a full pipe never stalls the agent; keep the tail for failure messages.
  let tail = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) tail = (tail + dec.decode(chunk)).slice(-4000);
  })().catch(() => {});
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`agent exited with ${proc.exitCode}: ${tail}`);
        const r = await fetch(`${address}/v1/agent/health`, { signal: AbortSignal.timeout(2_000) });
        return r.status === 200;
      },
      20_000,
      "the dev agent to elect itself",
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { address, proc, stop };
}
