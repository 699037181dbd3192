// The compiled binary's `agent -dev` as a child process on free ports (`-dev` plus a config file that
// sets only the ports and what a test adds), with its stderr kept for the test to read.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

/** Another process may take a free port before the agent binds it: start again on new ports this often. */
const BIND_ATTEMPTS = 5;

export interface DevBinary {
  readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  readonly httpPort: number;
  readonly rpcPort: number;
  readonly url: string;
  /** The config file given with -dev (ports and the test's extra HCL); edit it before a SIGHUP. */
  readonly configPath: string;
  /** The data directory the agent logged at start (its temporary directory). */
  readonly dataDir: string;
  /** Everything the agent wrote to stderr so far. */
  log(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
}

export interface DevBinaryOptions {
  /** Where the process runs and the config file is written. */
  dir: string;
  /** HCL appended after the ports. */
  extraHcl?: string;
  /** Extra environment (e.g. TMPDIR, so the agent's temporary directory lands where the test looks). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Starts `binary agent -dev -config <ports.hcl>` and waits until it leads (its health answers 200). */
export async function startDevBinary(binary: string, opts: DevBinaryOptions): Promise<DevBinary> {
  let lastFailure = "";
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const httpPort = freePort();
    const rpcPort = freePort();
    const configPath = join(opts.dir, "dev.hcl");
    writeFileSync(configPath, `ports {\n  http = ${httpPort}\n  rpc  = ${rpcPort}\n}\n${opts.extraHcl ?? ""}`);
    const proc = Bun.spawn([binary, "agent", "-dev", "-config", configPath], {
      cwd: opts.dir,
      env: { ...process.env, ...opts.env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    let stderr = "";
    const drained = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr) stderr += dec.decode(chunk, { stream: true });
    })().catch(() => {});
    void new Response(proc.stdout).arrayBuffer().catch(() => {});
    const url = `http://127.0.0.1:${httpPort}`;
    const up = await waitFor(
      async () => {
        if (proc.exitCode !== null) return "exited";
        const r = await fetch(`${url}/v1/agent/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return r?.status === 200 ? "up" : undefined;
      },
      opts.timeoutMs ?? 20_000,
      "agent -dev to lead",
    );
    if (up === "exited") {
      await drained;
      lastFailure = `agent -dev exited ${proc.exitCode}: ${stderr.slice(-2000)}`;
      // Only a failure to bind is worth another try with other ports.
      if (proc.exitCode === 1 && /Error starting the agent: Failed to (start server|listen)/.test(stderr)) continue;
      throw new Error(lastFailure);
    }
    // The health answers before the "started" line is logged (or read here): wait for the line.
    const dataDir = await waitFor(
      () => /agent: started: .*\bdata_dir=(\S+)/.exec(stderr)?.[1],
      5_000,
      "agent -dev to log its data_dir",
    ).catch((e: Error) => {
      proc.kill("SIGKILL");
      throw new Error(`${e.message}: ${stderr.slice(-2000)}`);
    });
    return { proc, httpPort, rpcPort, url, configPath, dataDir, log: () => stderr, exited: proc.exited };
  }
  throw new Error(`agent -dev could not bind free ports in ${BIND_ATTEMPTS} attempts; last: ${lastFailure}`);
}
