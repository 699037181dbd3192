// The agent configuration's schema (SPEC §2): every key, its type, its bounds and its default.
// Durations come out in milliseconds and sizes in bytes. Messages say what was expected; the
// loader adds `file:line:col`, the key's path and what was found.
import { isIP } from "node:net";
import { z } from "zod";
import { parseDuration, parseSize } from "../lib/duration.ts";
import { LEVELS, type Level } from "../lib/logger.ts";
import { isClusterKey } from "../transport/cluster_keys.ts";

/** The logger's levels, so that config and logger can never disagree. */
export const LOG_LEVELS = LEVELS;
export type LogLevel = Level;

const NAME_RE = /^[A-Za-z0-9._-]{1,128}$/;
const REGION_RE = /^[A-Za-z0-9_-]{1,64}$/;
const HOST_PORT_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/;
const MAX_PATH = 4096;
/** Bound on list lengths (retry_join, federation servers). */
export const MAX_ADDRESSES = 64;

function isHostPort(s: string): boolean {
  const m = HOST_PORT_RE.exec(s);
  if (!m) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}

/** "host" or "host:port", as `advertise` accepts; the port defaults to the matching `ports` entry. */
function isHostOptionalPort(s: string): boolean {
  return isHostPort(s) || /^[A-Za-z0-9.-]{1,253}$/.test(s) || isIP(s) === 6;
}

const bool = () => z.boolean({ error: "expected true or false" });

const intIn = (lo: number, hi: number) => {
  const what = `expected a whole number from ${lo} to ${hi}`;
  return z.number({ error: what }).refine((n) => Number.isInteger(n) && n >= lo && n <= hi, { error: what });
};

const text = (what: string, max = MAX_PATH) =>
  z.string({ error: `expected ${what}` }).refine((s) => s.length <= max, { error: `expected ${what} of at most ${max} characters` });

const name = (what: string, re: RegExp, max: number) => {
  const msg = `expected ${what}: 1 to ${max} letters, digits${re === NAME_RE ? ', ".", "-" or "_"' : ', "-" or "_"'}`;
  return z.string({ error: msg }).refine((s) => re.test(s), { error: msg });
};

const KEY_MSG = "expected a cluster key: 32 bytes in base64 (44 characters), as `node operator keygen` prints";
/** A wrong string is not echoed back: a typo in a key is most of the key. */
const NOT_A_KEY =
  "not a cluster key: a key is 32 bytes in base64 (44 characters), as `node operator keygen` prints (the value is not shown)";
const clusterKey = () => z.string({ error: KEY_MSG }).refine(isClusterKey, { error: NOT_A_KEY });

/**
 * `encrypt`: one key, or a list while rotating (the first dials, every one is accepted); always a
 * list once parsed, empty when unset.
 */
const clusterKeys = () =>
  z
    .union(
      [
        clusterKey(),
        z
          .array(clusterKey(), { error: KEY_MSG })
          .min(1, { error: "expected at least one key" })
          .max(4, { error: "expected at most 4 keys" }),
      ],
      {
        error: `${KEY_MSG}, or a list of such keys`,
      },
    )
    .transform((k) => (typeof k === "string" ? [k] : k))
    .default([]);

/** A duration string ("15s", "1h30m") parsed to milliseconds, within [minMs, maxMs]. */
const duration = (def: string, minMs: number, maxMs: number) =>
  z
    .string({ error: 'expected a duration string such as "15s"' })
    .transform((s, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(s);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: "custom", message: `duration ${JSON.stringify(s)} is out of range: expected ${minMs}ms to ${maxMs}ms` });
        return z.NEVER;
      }
      return ms;
    })
    .prefault(def);

/** A size string ("64KiB", "10MB") parsed to bytes, within [min, max]. */
const size = (def: string, min: number, max: number) =>
  z
    .string({ error: 'expected a size string such as "64KiB"' })
    .transform((s, ctx) => {
      let n: number;
      try {
        n = parseSize(s);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
      if (n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `size ${JSON.stringify(s)} is out of range: expected ${min} to ${max} bytes` });
        return z.NEVER;
      }
      return n;
    })
    .prefault(def);

const hostPort = () => {
  const what = 'expected a "host:port" address such as "10.0.0.2:4647"';
  return z.string({ error: what }).refine(isHostPort, { error: what });
};

const addressList = () =>
  z
    .array(hostPort(), { error: 'expected a list of "host:port" addresses' })
    .refine((a) => a.length <= MAX_ADDRESSES, { error: `expected at most ${MAX_ADDRESSES} addresses` });

/** A block: unknown keys are refused; an absent block gets every default. */
function block<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, { error: (iss) => (iss.code === "invalid_type" ? "expected a block" : undefined) });
}

const port = () => intIn(1, 65535);

const advertiseAddr = () => {
  const what = 'expected an address "host" or "host:port" such as "10.0.0.1:4646"';
  return z.string({ error: what }).refine(isHostOptionalPort, { error: what }).optional();
};

export const configSchema = block({
  /** Node name; the loader fills in the hostname when absent. */
  name: name("a node name", NAME_RE, 128).optional(),
  region: name("a region name", REGION_RE, 64).default("global"),
  datacenter: name("a datacenter name", REGION_RE, 64).default("dc1"),
  /** Required unless -dev; the loader checks. */
  data_dir: text("a directory path")
    .refine((s) => s.length > 0, { error: "expected a directory path" })
    .optional(),
  bind_addr: z
    .string({ error: 'expected an IP address such as "0.0.0.0"' })
    .refine((s) => isIP(s) !== 0, { error: 'expected an IP address such as "0.0.0.0"' })
    .default("0.0.0.0"),
  log_level: z
    .string({ error: `expected one of ${LOG_LEVELS.join(", ")}` })
    .refine((s) => (LOG_LEVELS as readonly string[]).includes(s.toUpperCase()), { error: `expected one of ${LOG_LEVELS.join(", ")}` })
    .transform((s) => s.toUpperCase() as LogLevel)
    .default("INFO"),
  log_json: bool().default(false),
  ports: block({
    http: port().default(4646),
    rpc: port().default(4647),
  }).prefault({}),
  /** Both filled in by the loader when absent (first private IP, ports from `ports`). */
  advertise: block({
    http: advertiseAddr(),
    rpc: advertiseAddr(),
  }).prefault({}),
  server: block({
    enabled: bool().default(true),
    bootstrap_expect: intIn(0, 9).default(1),
    server_join: block({
      retry_join: addressList().default([]),
      retry_interval: duration("15s", 100, 3_600_000),
    }).prefault({}),
    raft_multiplier: intIn(1, 10).default(1),
    snapshot_threshold: intIn(1, 10_000_000).default(8192),
    trailing_logs: intIn(0, 10_000_000).default(10240),
    encrypt: clusterKeys(),
    insecure_rpc: bool().default(false),
    autopilot: block({
      cleanup_dead_servers: bool().default(true),
      last_contact_threshold: duration("200ms", 10, 3_600_000),
      max_trailing_logs: intIn(0, 10_000_000).default(250),
      server_stabilization_time: duration("10s", 0, 7 * 24 * 3_600_000),
      dead_server_last_contact_threshold: duration("24h", 1000, 365 * 24 * 3_600_000),
    }).prefault({}),
  }).prefault({}),
  federation: block({
    region: z
      .record(
        z.string().refine((s) => REGION_RE.test(s), { error: 'invalid region name: expected 1 to 64 letters, digits, "-" or "_"' }),
        block({
          servers: addressList().refine((a) => a.length > 0, { error: 'expected a non-empty list of "host:port" addresses' }),
        }),
        { error: 'expected blocks such as region "east" { servers = [...] }' },
      )
      .default({}),
  })
    .prefault({})
    // `federation { region "east" {...} }` is written by block type then label; code reads regions by name.
    .transform((f) => f.region),
  snapshot_schedule: block({
    enabled: bool().default(false),
    interval: duration("1h", 1000, 7 * 24 * 3_600_000),
    retain: intIn(1, 10_000).default(24),
    /** Defaults to `<data_dir>/backups`; the loader fills it in. */
    path: text("a directory path").optional(),
  }).prefault({}),
  acl: block({
    enabled: bool().default(false),
  }).prefault({}),
  tls: block({
    http: bool().default(false),
    rpc: bool().default(false),
    ca_file: text("a file path").default(""),
    cert_file: text("a file path").default(""),
    key_file: text("a file path").default(""),
    verify_server_hostname: bool().default(true),
  }).prefault({}),
  limits: block({
    http_max_conns_per_client: intIn(1, 100_000).default(100),
    rpc_max_conns_per_client: intIn(1, 100_000).default(100),
    max_request_body: size("64KiB", 1024, 128 * 1024 * 1024),
  }).prefault({}),
}).superRefine((c, ctx) => {
  // Rules that span keys; each issue points at the key an operator would change.
  const tlsOn = c.tls.http || c.tls.rpc;
  if (tlsOn && c.tls.cert_file === "")
    ctx.addIssue({
      code: "custom",
      path: ["tls", "cert_file"],
      message: "a certificate file is required when tls.http or tls.rpc is true",
    });
  if (tlsOn && c.tls.key_file === "")
    ctx.addIssue({ code: "custom", path: ["tls", "key_file"], message: "a key file is required when tls.http or tls.rpc is true" });
  if (c.tls.rpc && c.tls.ca_file === "")
    ctx.addIssue({
      code: "custom",
      path: ["tls", "ca_file"],
      message: "a CA file is required when tls.rpc is true (servers verify each other)",
    });
  if (Object.hasOwn(c.federation, c.region)) {
    ctx.addIssue({
      code: "custom",
      path: ["federation", "region", c.region],
      message: `region "${c.region}" is this server's own region; list only other regions`,
    });
  }
  if (c.ports.http === c.ports.rpc)
    ctx.addIssue({ code: "custom", path: ["ports", "rpc"], message: `ports.http and ports.rpc must differ (both are ${c.ports.rpc})` });
});

/** The schema's output, before the loader fills in what depends on the machine. */
export type RawConfig = z.output<typeof configSchema>;

/**
 * The agent's configuration, keys as written in HCL (SPEC §2). Durations are milliseconds,
 * sizes bytes; every default is filled in.
 */
export interface Config {
  /** Node name; default: the hostname. */
  name: string;
  /** Region this server belongs to; default "global". */
  region: string;
  /** Default "dc1". */
  datacenter: string;
  /** Where raft log, snapshots and state live. Required unless -dev. */
  data_dir: string;
  /** Address the HTTP and RPC listeners bind; default "0.0.0.0". */
  bind_addr: string;
  /** Default "INFO"; SIGHUP reloads it. */
  log_level: LogLevel;
  /** JSON lines instead of text lines; default false. */
  log_json: boolean;
  /** Listener ports; defaults 4646 and 4647. */
  ports: { http: number; rpc: number };
  /** "host:port" others use to reach this server; default: bind_addr if specific, else the first private IPv4, with `ports`. */
  advertise: { http: string; rpc: string };
  server: {
    /** Default true. */
    enabled: boolean;
    /** Servers to wait for before bootstrapping the cluster; 0 never bootstraps (join only); default 1. */
    bootstrap_expect: number;
    server_join: {
      /** "host:port" RPC addresses to join; default []. */
      retry_join: string[];
      /** Milliseconds between join attempts; default 15000 ("15s"). */
      retry_interval: number;
    };
    /** Scales election and heartbeat timeouts, 1..10; default 1. */
    raft_multiplier: number;
    /** Log entries between automatic raft snapshots; default 8192. */
    snapshot_threshold: number;
    /** Log entries kept after a raft snapshot; default 10240. */
    trailing_logs: number;
    /** Cluster keys (base64), the first used to dial, all accepted; [] when unset. SIGHUP reloads them. */
    encrypt: string[];
    /** Run a non-loopback RPC port with neither key nor tls.rpc (warned at start and hourly); default false. */
    insecure_rpc: boolean;
    /** The leader's server health and dead-server cleanup (server/autopilot.ts); Nomad's keys and defaults. */
    autopilot: {
      /** Remove a failed voter once a replacement is ready or it stayed failed too long; default true. */
      cleanup_dead_servers: boolean;
      /** Milliseconds without an answer after which a server is unhealthy; default 200 ("200ms"). */
      last_contact_threshold: number;
      /** Entries a server may trail the leader by and stay healthy; default 250. */
      max_trailing_logs: number;
      /** Milliseconds a new server must stay healthy before it votes; default 10000 ("10s"). */
      server_stabilization_time: number;
      /** Milliseconds a voter may stay failed before it is removed without a replacement; default 86400000 ("24h"). */
      dead_server_last_contact_threshold: number;
    };
  };
  /**
   * Other regions by name, each with its servers' RPC addresses; default {}. Written in HCL as
   * `federation { region "east" { servers = [...] } }`, read here as `federation.east.servers`.
   */
  federation: Record<string, { servers: string[] }>;
  snapshot_schedule: {
    /** Leader-run automatic backups; default false. */
    enabled: boolean;
    /** Milliseconds between backups; default 3600000 ("1h"). */
    interval: number;
    /** Backups kept; default 24. */
    retain: number;
    /** Directory of backups; default `<data_dir>/backups`. */
    path: string;
  };
  acl: { enabled: boolean };
  tls: {
    http: boolean;
    rpc: boolean;
    ca_file: string;
    cert_file: string;
    key_file: string;
    verify_server_hostname: boolean;
  };
  limits: {
    /** Concurrent HTTP connections per client IP; default 100. */
    http_max_conns_per_client: number;
    /** Concurrent RPC connections per client IP; default 100. */
    rpc_max_conns_per_client: number;
    /** Bytes; every request body except snapshot restore; default 65536 ("64KiB"). */
    max_request_body: number;
  };
}
