// `node agent`: load the configuration, start the server and the HTTP API, and
// run until SIGINT/SIGTERM (graceful) — SIGHUP reloads log_level and the cluster key list.
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { devConfig, loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { aclGuard, aclRoutes } from "../http/acl.ts";
import { createApp } from "../http/app.ts";
import { serveHttp, type HttpListener } from "../http/serve.ts";
import { createLogger } from "../lib/logger.ts";
import { Acl } from "../server/acl.ts";
import { Server } from "../server/server.ts";
import { type DirLock, lockDataDir } from "../storage/dir_lock.ts";
import { bool, CliError, strs, type Command } from "./command.ts";
import { settlesWithin } from "../lib/deadline.ts";

/** How long in-flight HTTP requests get to finish after SIGINT/SIGTERM. */
const SHUTDOWN_GRACE_MS = 3_000;

export const agentCommand: Command = {
  path: ["agent"],
  synopsis: "Run an edgenode server",
  usage: "[-dev] [-config PATH ...]",
  doing: "starting the agent",
  flags: [
    {
      name: "config",
      kind: "strings",
      arg: "PATH",
      help: "A configuration file or a directory of *.hcl files; repeat to merge several, in order.",
    },
    {
      name: "dev",
      kind: "bool",
      help: "One server on 127.0.0.1 with its data in a fresh temporary directory, bootstrapped alone, ACLs off.",
    },
  ],
  async run(f, io) {
    const dev = bool(f, "dev");
    const paths = strs(f, "config");
    if (f.args.length > 0) throw new CliError(`Error starting the agent: unexpected arguments: ${f.args.join(" ")}`);
    if (!dev && paths.length === 0) throw new CliError("Error starting the agent: give -config PATH (a file or directory), or -dev");
    let tmp: string | undefined;
    let cfg: Config;
    try {
      if (dev) {
        tmp = await mkdtemp(join(tmpdir(), "edgenode-dev-"));
        cfg = paths.length ? await loadConfig(paths, { dev: true, dataDir: tmp }) : devConfig(tmp);
      } else {
        cfg = await loadConfig(paths);
      }
    } catch (e) {
      if (tmp) await rm(tmp, { recursive: true, force: true });
      throw new CliError(`Error loading configuration: ${(e as Error).message}`);
    }
    return runAgent(cfg, io, tmp, paths, dev);
  },
};

async function runAgent(
  cfg: Config,
  io: { err(s: string): void },
  tmpDir: string | undefined,
  paths: string[],
  dev: boolean,
): Promise<number> {
  const logger = createLogger({ level: cfg.log_level, json: cfg.log_json });
  const log = logger.named("agent");
  // Before anything opens the stores: a second agent (or an offline command) on this directory stops here.
  let lock: DirLock;
  try {
    lock = lockDataDir(cfg.data_dir, "agent");
  } catch (e) {
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    io.err(`Error starting the agent: ${(e as Error).message}`);
    return 1;
  }
  log.info("data directory locked", { data_dir: cfg.data_dir, lock: lock.path, pid: process.pid });
  const server = new Server({ config: cfg, logger: logger.named("server") });
  let http: HttpListener | undefined;
  try {
    Acl.install(server);
    await server.start();
    const app = createApp(server, {
      maxRequestBody: cfg.limits.max_request_body,
      maxConnsPerClient: cfg.limits.http_max_conns_per_client,
      clientIp: (req) => http?.clientIp(req),
      extra: [aclRoutes],
    });
    const guarded = aclGuard(server, (req) => app.fetch(req));
    http = serveHttp({
      hostname: cfg.bind_addr,
      port: cfg.ports.http,
      ...(cfg.tls.http
        ? {
            tls: {
              cert: Bun.file(cfg.tls.cert_file),
              key: Bun.file(cfg.tls.key_file),
              ...(cfg.tls.ca_file ? { ca: Bun.file(cfg.tls.ca_file) } : {}),
            },
          }
        : {}),
      maxConnsPerAddress: cfg.limits.http_max_conns_per_client,
      log: (level, msg) => (level === "warn" ? log.warn(msg) : log.info(msg)),
      onRefused: (reason) => server.observeRefusal("http", reason),
      fetch: guarded,
    });
  } catch (e) {
    await server.shutdown().catch(() => {});
    lock.release();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    io.err(`Error starting the agent: ${(e as Error).message}`);
    return 1;
  }
  log.info("started", {
    http: `${cfg.bind_addr}:${http.port}`,
    rpc: `${cfg.bind_addr}:${server.rpcPort}`,
    region: cfg.region,
    data_dir: cfg.data_dir,
    version: server.self().Version as string,
  });
  log.info("status page", { ui: uiAddress(cfg.tls.http ? "https" : "http", cfg.bind_addr, http.port) });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info("caught signal; shutting down", { signal: sig });
      // Stop accepting, let in-flight requests finish briefly, then close raft and fsync.
      // Blocking queries may hold connections for minutes: after a short grace they are cut.
      await settlesWithin(http?.stop(false), SHUTDOWN_GRACE_MS);
      await http?.stop(true);
      await server.shutdown();
      lock.release();
      if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
      log.info("shutdown complete");
      resolve(0);
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGHUP", () => {
      // Only log_level and server.encrypt (key rotation) are reloadable; everything else needs a restart.
      if (paths.length === 0) return;
      loadConfig(paths, dev ? { dev: true, dataDir: cfg.data_dir } : {}).then(
        (next) => {
          logger.setLevel(next.log_level);
          log.info("reloaded log level", { level: next.log_level });
          try {
            log.info(server.reloadKeys(next.server.encrypt));
          } catch (e) {
            log.error("reloading the cluster key failed", { error: (e as Error).message });
          }
        },
        (e: unknown) => log.error("reload failed; keeping the running configuration", { error: (e as Error).message }),
      );
    });
  });
}

/** The status page's address; a wildcard bind names this host, which a browser elsewhere can reach. */
function uiAddress(scheme: string, bindAddr: string, port: number): string {
  const host = bindAddr === "0.0.0.0" || bindAddr === "::" ? hostname() : bindAddr.includes(":") ? `[${bindAddr}]` : bindAddr;
  return `${scheme}://${host}:${port}/ui/`;
}
