// The configuration loader: defaults for every key of SPEC §2, good and bad files with the exact
// `file:line:col` and message, directory merge order, -dev, the example file, redaction.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultAdvertiseHost, isPrivateIPv4, type InterfaceTable } from "../../src/config/advertise.ts";
import { ConfigError } from "../../src/config/config_error.ts";
import { HCL_LIMITS } from "../../src/config/hcl.ts";
import { configFromSources, devConfig, loadConfig, type Config, type LoadOptions } from "../../src/config/load.ts";
import { REDACTED, redactConfig } from "../../src/config/redact.ts";

const IFACES: InterfaceTable = {
  lo: [{ address: "127.0.0.1", family: "IPv4", internal: true }],
  eth0: [
    { address: "fe80::1", family: "IPv6", internal: false },
    { address: "203.0.113.7", family: "IPv4", internal: false },
  ],
  eth1: [{ address: "10.1.2.3", family: "IPv4", internal: false }],
};
const ENV: LoadOptions = { hostname: () => "testhost", interfaces: () => IFACES };

function load(text: string, opts: LoadOptions = {}): Config {
  return configFromSources([{ file: "a.hcl", text }], { ...ENV, ...opts });
}

function errorOf(text: string, opts: LoadOptions = {}): string {
  try {
    load(text, opts);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

/** Every key of SPEC §2: its path, its default, and a non-default value written in HCL with what it parses to. */
const KEYS: [path: string, def: unknown, hcl: string, value: unknown][] = [
  ["name", "testhost", '"edge-1"', "edge-1"],
  ["region", "global", '"east"', "east"],
  ["datacenter", "dc1", '"dc2"', "dc2"],
  ["data_dir", "/var/lib/edgenode", '"/srv/edge"', "/srv/edge"],
  ["bind_addr", "0.0.0.0", '"10.9.9.9"', "10.9.9.9"],
  ["log_level", "INFO", '"debug"', "DEBUG"],
  ["log_json", false, "true", true],
  ["ports.http", 4646, "8080", 8080],
  ["ports.rpc", 4647, "8081", 8081],
  ["advertise.http", "10.1.2.3:4646", '"192.168.1.1"', "192.168.1.1:4646"],
  ["advertise.rpc", "10.1.2.3:4647", '"edge-1.lan:9000"', "edge-1.lan:9000"],
  ["server.enabled", true, "false", false],
  ["server.bootstrap_expect", 1, "3", 3],
  ["server.server_join.retry_join", [], '["10.0.0.2:4647", "[::1]:4647"]', ["10.0.0.2:4647", "[::1]:4647"]],
  ["server.server_join.retry_interval", 15_000, '"1m30s"', 90_000],
  ["server.raft_multiplier", 1, "10", 10],
  ["server.snapshot_threshold", 8192, "100", 100],
  ["server.trailing_logs", 10240, "0", 0],
  ["server.encrypt", [], '"qW6ZbGNaNCj7GWyYtDU8sCFQpeXk7fILDOmJqlhz0hs="', ["qW6ZbGNaNCj7GWyYtDU8sCFQpeXk7fILDOmJqlhz0hs="]],
  ["server.insecure_rpc", false, "true", true],
  ["server.autopilot.cleanup_dead_servers", true, "false", false],
  ["server.autopilot.last_contact_threshold", 200, '"1s"', 1000],
  ["server.autopilot.max_trailing_logs", 250, "1000", 1000],
  ["server.autopilot.server_stabilization_time", 10_000, '"30s"', 30_000],
  ["server.autopilot.dead_server_last_contact_threshold", 86_400_000, '"1h"', 3_600_000],
  ["federation", {}, '{ region = { west = { servers = ["10.2.0.1:4647"] } } }', { west: { servers: ["10.2.0.1:4647"] } }],
  ["snapshot_schedule.enabled", false, "true", true],
  ["snapshot_schedule.interval", 3_600_000, '"10m"', 600_000],
  ["snapshot_schedule.retain", 24, "1", 1],
  ["snapshot_schedule.path", "/var/lib/edgenode/backups", '"/backups"', "/backups"],
  ["acl.enabled", false, "true", true],
  ["tls.http", false, "false", false],
  ["tls.rpc", false, "false", false],
  ["tls.ca_file", "", '"/etc/edgenode/ca.pem"', "/etc/edgenode/ca.pem"],
  ["tls.cert_file", "", '"/etc/edgenode/cert.pem"', "/etc/edgenode/cert.pem"],
  ["tls.key_file", "", '"/etc/edgenode/key.pem"', "/etc/edgenode/key.pem"],
  ["tls.verify_server_hostname", true, "false", false],
  ["limits.http_max_conns_per_client", 100, "5", 5],
  ["limits.rpc_max_conns_per_client", 100, "7", 7],
  ["limits.max_request_body", 65536, '"1MiB"', 1024 * 1024],
];

function get(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

/** HCL that sets one dotted key: `a.b.c = v` becomes `a { b { c = v } }`. */
function setKey(path: string, hcl: string): string {
  const parts = path.split(".");
  const last = parts.pop()!;
  return parts.reduceRight((inner, p) => `${p} {\n${inner}\n}`, `${last} = ${hcl}`);
}

/** Dotted paths of every leaf of the config (the federation map counts as one). */
function leaves(o: unknown, prefix = ""): string[] {
  if (o === null || typeof o !== "object" || Array.isArray(o) || prefix === "federation") return [prefix];
  return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

const MIN = 'data_dir = "/var/lib/edgenode"\n';

describe("every key of SPEC §2", () => {
  test("the table covers every key the loader produces", () => {
    expect(leaves(load(MIN)).sort()).toEqual(KEYS.map((k) => k[0]).sort());
  });

  test("an almost empty file gets every default", () => {
    const cfg = load(MIN);
    for (const [path, def] of KEYS) expect({ path, v: get(cfg, path) }).toEqual({ path, v: def });
  });

  for (const [path, def, hcl, value] of KEYS) {
    test(`${path}: set to a value, and set explicitly to its default`, () => {
      const cfg = load(path === "data_dir" ? setKey(path, hcl) : MIN + setKey(path, hcl));
      expect(get(cfg, path)).toEqual(value);
      if (
        typeof def === "number" ||
        typeof def === "boolean" ||
        (typeof def === "string" && path !== "advertise.http" && path !== "advertise.rpc")
      ) {
        // Written back in the form a user would write it, the default parses to itself.
        const written =
          path === "log_level"
            ? '"INFO"'
            : path.endsWith("retry_interval")
              ? '"15s"'
              : path.endsWith(".interval")
                ? '"1h"'
                : path.endsWith("last_contact_threshold") && !path.includes("dead_server")
                  ? '"200ms"'
                  : path.endsWith("server_stabilization_time")
                    ? '"10s"'
                    : path.endsWith("dead_server_last_contact_threshold")
                      ? '"24h"'
                      : path.endsWith("max_request_body")
                        ? '"64KiB"'
                        : JSON.stringify(def);
        const again = load(path === "data_dir" ? setKey(path, written) : MIN + setKey(path, written));
        expect(again).toEqual(load(MIN));
      }
    });
  }
});

describe("machine-dependent defaults", () => {
  test("advertise: bind_addr when specific, else first private IPv4, else first IPv4, else loopback", () => {
    expect(defaultAdvertiseHost("10.5.5.5", IFACES)).toBe("10.5.5.5");
    expect(defaultAdvertiseHost("0.0.0.0", IFACES)).toBe("10.1.2.3");
    expect(defaultAdvertiseHost("::", { e: [{ address: "198.51.100.1", family: 4, internal: false }] })).toBe("198.51.100.1");
    expect(defaultAdvertiseHost("0.0.0.0", { lo: [{ address: "127.0.0.1", family: "IPv4", internal: true }] })).toBe("127.0.0.1");
    expect(load(`${MIN}bind_addr = "192.168.7.7"\nports { http = 1 rpc = 2 }`).advertise).toEqual({
      http: "192.168.7.7:1",
      rpc: "192.168.7.7:2",
    });
    expect(load(`${MIN}advertise { http = "::1" }`).advertise.http).toBe("[::1]:4646");
  });

  test("private ranges", () => {
    for (const ip of ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "100.64.0.1"]) expect(isPrivateIPv4(ip)).toBe(true);
    for (const ip of ["172.15.0.1", "172.32.0.1", "192.169.0.1", "8.8.8.8", "100.128.0.1", "::1", "x"])
      expect(isPrivateIPv4(ip)).toBe(false);
  });

  test("a hostname that is not a valid node name is cleaned up", () => {
    expect(load(MIN, { hostname: () => "my host/1" }).name).toBe("my-host-1");
    expect(load(MIN, { hostname: () => "" }).name).toBe("edgenode");
  });
});

/** Bad files: the exact first line of the error. */
const BAD: [title: string, text: string, message: string][] = [
  ["missing data_dir", 'region = "x"\n', "a.hcl:1:1: data_dir: expected a directory path, but it is not set (it is required unless -dev)"],
  ["unknown top-level key", `${MIN}nmae = "x"\n`, 'a.hcl:2:1: nmae: unknown key (did you mean "name"?)'],
  [
    "unknown key, nothing close",
    `${MIN}server {\n  colour = "red"\n}\n`,
    "a.hcl:3:3: server.colour: unknown key (expected one of: enabled, bootstrap_expect, server_join, raft_multiplier, snapshot_threshold, trailing_logs, encrypt, insecure_rpc, autopilot)",
  ],
  [
    "unknown nested key",
    `${MIN}server {\n  server_join { retry_intervall = "1s" }\n}\n`,
    'a.hcl:3:17: server.server_join.retry_intervall: unknown key (did you mean "retry_interval"?)',
  ],
  [
    "unknown block",
    `${MIN}telemetry {}\n`,
    "a.hcl:2:1: telemetry: unknown key (expected one of: name, region, datacenter, data_dir, bind_addr, log_level, log_json, ports, advertise, server, federation, snapshot_schedule, acl, tls, limits)",
  ],
  [
    "unknown key in a federation region",
    `${MIN}federation {\n  region "east" { servers = ["a:1"]  server = 1 }\n}\n`,
    'a.hcl:3:38: federation.region.east.server: unknown key (did you mean "servers"?)',
  ],
  [
    "bad duration",
    `${MIN}server { server_join { retry_interval = "15 s" } }`,
    'a.hcl:2:41: server.server_join.retry_interval: invalid duration "15 s": expected a number and unit such as "15s" (units ns, us, ms, s, m, h)',
  ],
  [
    "duration as a number",
    `${MIN}snapshot_schedule { interval = 60 }`,
    'a.hcl:2:32: snapshot_schedule.interval: expected a duration string such as "15s" but found number 60',
  ],
  [
    "duration out of range",
    `${MIN}snapshot_schedule { interval = "10ms" }`,
    'a.hcl:2:32: snapshot_schedule.interval: duration "10ms" is out of range: expected 1000ms to 604800000ms',
  ],
  [
    "bad size",
    `${MIN}limits { max_request_body = "64 parsecs" }`,
    'a.hcl:2:29: limits.max_request_body: invalid size "64 parsecs": unknown unit "parsecs" (use B, KB, MB, GB, KiB, MiB, GiB)',
  ],
  [
    "size too small",
    `${MIN}limits { max_request_body = "10" }`,
    'a.hcl:2:29: limits.max_request_body: size "10" is out of range: expected 1024 to 134217728 bytes',
  ],
  [
    "port as a string",
    `${MIN}ports { http = "4646" }`,
    'a.hcl:2:16: ports.http: expected a whole number from 1 to 65535 but found string "4646"',
  ],
  ["port zero", `${MIN}ports { rpc = 0 }`, "a.hcl:2:15: ports.rpc: expected a whole number from 1 to 65535 but found number 0"],
  [
    "port too large",
    `${MIN}ports {\n  http = 65536\n}`,
    "a.hcl:3:10: ports.http: expected a whole number from 1 to 65535 but found number 65536",
  ],
  ["fractional port", `${MIN}ports { http = 1.5 }`, "a.hcl:2:16: ports.http: expected a whole number from 1 to 65535 but found number 1.5"],
  [
    "same port twice",
    `${MIN}ports { http = 5000  rpc = 5000 }`,
    "a.hcl:2:28: ports.rpc: ports.http and ports.rpc must differ (both are 5000)",
  ],
  [
    "raft_multiplier 11",
    `${MIN}server { raft_multiplier = 11 }`,
    "a.hcl:2:28: server.raft_multiplier: expected a whole number from 1 to 10 but found number 11",
  ],
  [
    "raft_multiplier 0",
    `${MIN}server { raft_multiplier = 0 }`,
    "a.hcl:2:28: server.raft_multiplier: expected a whole number from 1 to 10 but found number 0",
  ],
  [
    "key too short",
    `${MIN}server { encrypt = "c2hvcnQ=" }`,
    "a.hcl:2:20: server.encrypt: not a cluster key: a key is 32 bytes in base64 (44 characters), as `node operator keygen` prints (the value is not shown)",
  ],
  [
    "key list with a bad key",
    `${MIN}server {\n  encrypt = ["qW6ZbGNaNCj7GWyYtDU8sCFQpeXk7fILDOmJqlhz0hs=", "nope"]\n}`,
    "a.hcl:3:62: server.encrypt[1]: not a cluster key: a key is 32 bytes in base64 (44 characters), as `node operator keygen` prints (the value is not shown)",
  ],
  [
    "key as a number",
    `${MIN}server { encrypt = 5 }`,
    "a.hcl:2:20: server.encrypt: expected a cluster key: 32 bytes in base64 (44 characters), as `node operator keygen` prints, or a list of such keys but found number 5",
  ],
  [
    "retain 0",
    `${MIN}snapshot_schedule { retain = 0 }`,
    "a.hcl:2:30: snapshot_schedule.retain: expected a whole number from 1 to 10000 but found number 0",
  ],
  [
    "log level",
    `${MIN}log_level = "verbose"`,
    'a.hcl:2:13: log_level: expected one of TRACE, DEBUG, INFO, WARN, ERROR but found string "verbose"',
  ],
  ["bool as a string", `${MIN}log_json = "yes"`, 'a.hcl:2:12: log_json: expected true or false but found string "yes"'],
  ["null where a bool goes", `${MIN}acl { enabled = null }`, "a.hcl:2:17: acl.enabled: expected true or false but found null"],
  ["block where a value goes", `${MIN}log_json {\n}`, "a.hcl:2:1: log_json: expected true or false but found a block"],
  ["value where a block goes", `${MIN}server = 5`, "a.hcl:2:10: server: expected a block but found number 5"],
  ["list where a block goes", `${MIN}tls = []`, "a.hcl:2:7: tls: expected a block but found a list"],
  [
    "retry_join not a list",
    `${MIN}server { server_join { retry_join = "10.0.0.2:4647" } }`,
    'a.hcl:2:37: server.server_join.retry_join: expected a list of "host:port" addresses but found string "10.0.0.2:4647"',
  ],
  [
    "retry_join entry without a port",
    `${MIN}server {\n  server_join {\n    retry_join = ["10.0.0.2:4647", "10.0.0.3"]\n  }\n}`,
    'a.hcl:4:36: server.server_join.retry_join[1]: expected a "host:port" address such as "10.0.0.2:4647" but found string "10.0.0.3"',
  ],
  [
    "retry_join entry with a bad port",
    `${MIN}server { server_join { retry_join = ["h:70000"] } }`,
    'a.hcl:2:38: server.server_join.retry_join[0]: expected a "host:port" address such as "10.0.0.2:4647" but found string "h:70000"',
  ],
  [
    "bind_addr not an IP",
    `${MIN}bind_addr = "localhost"`,
    'a.hcl:2:13: bind_addr: expected an IP address such as "0.0.0.0" but found string "localhost"',
  ],
  [
    "advertise with a bad address",
    `${MIN}advertise { rpc = "a b" }`,
    'a.hcl:2:19: advertise.rpc: expected an address "host" or "host:port" such as "10.0.0.1:4646" but found string "a b"',
  ],
  [
    "region name",
    `${MIN}region = "us east"`,
    'a.hcl:2:10: region: expected a region name: 1 to 64 letters, digits, "-" or "_" but found string "us east"',
  ],
  [
    "federation region without servers",
    `${MIN}federation {\n  region "east" {}\n}`,
    'a.hcl:3:3: federation.region.east.servers: expected a list of "host:port" addresses, but it is not set',
  ],
  [
    "federation region with no servers",
    `${MIN}federation {\n  region "east" { servers = [] }\n}`,
    'a.hcl:3:29: federation.region.east.servers: expected a non-empty list of "host:port" addresses but found a list',
  ],
  [
    "federation region with a bad name",
    `${MIN}federation {\n  region "e a" { servers = ["h:1"] }\n}`,
    'a.hcl:3:10: federation.region.e a: invalid region name: expected 1 to 64 letters, digits, "-" or "_"',
  ],
  [
    "federation names our own region",
    `${MIN}federation {\n  region "global" { servers = ["h:1"] }\n}`,
    'a.hcl:3:3: federation.region.global: region "global" is this server\'s own region; list only other regions',
  ],
  [
    "tls on without certificates",
    `${MIN}tls {\n  http = true\n}`,
    "a.hcl:2:1: tls.cert_file: a certificate file is required when tls.http or tls.rpc is true",
  ],
  [
    "tls rpc without a CA",
    `${MIN}tls {\n  rpc = true\n  cert_file = "c"\n  key_file = "k"\n}`,
    "a.hcl:2:1: tls.ca_file: a CA file is required when tls.rpc is true (servers verify each other)",
  ],
  ["block repeated", `${MIN}server {}\nacl {}\nserver {}`, "a.hcl:4:1: block server is already defined at 2:1"],
  [
    "labelled block repeated",
    `${MIN}federation {\n  region "e" { servers = ["h:1"] }\n  region "e" { servers = ["h:2"] }\n}`,
    'a.hcl:4:3: block region "e" is already defined at 3:3',
  ],
  ["attribute then block", `${MIN}acl = {}\nacl {}`, 'a.hcl:3:1: block acl: "acl" is already defined as an attribute at 2:1'],
  ["block then attribute", `${MIN}acl {}\nacl = {}`, 'a.hcl:3:1: "acl" is already defined as a block at 2:1'],
  [
    "labels on one and not the other",
    `${MIN}federation {\n  region {}\n  region "e" {}\n}`,
    "a.hcl:4:3: block region has labels here but is already defined without them (as a block at 3:3)",
  ],
  [
    "syntax error",
    `${MIN}server {\n  bootstrap_expect 3\n}`,
    'a.hcl:3:20: expected "=" or "{" after "bootstrap_expect" but found number 3',
  ],
  [
    "string too long",
    `${MIN}tls { ca_file = "${"x".repeat(5000)}" }`,
    `a.hcl:2:17: tls.ca_file: expected a file path of at most 4096 characters but found string "${"x".repeat(40)}…"`,
  ],
  [
    "too many retry_join addresses",
    `${MIN}server { server_join { retry_join = [${Array.from({ length: 65 }, (_, i) => `"h${i}:1"`).join(", ")}] } }`,
    "a.hcl:2:37: server.server_join.retry_join: expected at most 64 addresses but found a list",
  ],
];

describe("bad files name file:line:col, the key's path and what was expected", () => {
  for (const [title, text, message] of BAD) {
    test(title, () => {
      expect(errorOf(text).split("\n")[0]).toBe(message);
    });
  }

  test("several problems are all reported, in file order", () => {
    const msg = errorOf(`${MIN}ports {\n  http = "x"\n  htp = 1\n}\nlog_level = 3\n`);
    expect(msg).toBe(
      [
        'a.hcl:3:10: ports.http: expected a whole number from 1 to 65535 but found string "x"',
        'a.hcl:4:3: ports.htp: unknown key (did you mean "http"?)',
        "a.hcl:6:13: log_level: expected one of TRACE, DEBUG, INFO, WARN, ERROR but found number 3",
      ].join("\n"),
    );
  });

  test("the number of problems reported is bounded", () => {
    const text = MIN + Array.from({ length: 30 }, (_, i) => `k${i} = 1`).join("\n");
    const lines = errorOf(text).split("\n");
    expect(lines.length).toBe(11);
    expect(lines[10]).toBe("… and 20 more");
  });

  test("__proto__ and other object keys are plain unknown keys", () => {
    expect(errorOf(`${MIN}__proto__ = 1`)).toBe(
      "a.hcl:2:1: __proto__: unknown key (expected one of: name, region, datacenter, data_dir, bind_addr, log_level, log_json, ports, advertise, server, federation, snapshot_schedule, acl, tls, limits)",
    );
    expect(errorOf(`${MIN}ports { constructor = 1 }`)).toBe("a.hcl:2:9: ports.constructor: unknown key (expected one of: http, rpc)");
  });
});

describe("merging sources", () => {
  test("later files override scalars, merge blocks key by key, replace lists", () => {
    const cfg = configFromSources(
      [
        {
          file: "1.hcl",
          text: `${MIN}region = "r1"\nserver {\n  bootstrap_expect = 3\n  server_join { retry_join = ["a:1", "b:1"] }\n}\nfederation {\n  region "east" { servers = ["e:1"] }\n}`,
        },
        {
          file: "2.hcl",
          text: `region = "r2"\nserver {\n  raft_multiplier = 2\n  server_join { retry_join = ["c:1"] }\n}\nfederation {\n  region "west" { servers = ["w:1"] }\n}`,
        },
      ],
      ENV,
    );
    expect(cfg.region).toBe("r2");
    expect(cfg.server.bootstrap_expect).toBe(3);
    expect(cfg.server.raft_multiplier).toBe(2);
    expect(cfg.server.server_join.retry_join).toEqual(["c:1"]);
    expect(cfg.federation).toEqual({ east: { servers: ["e:1"] }, west: { servers: ["w:1"] } });
  });

  test("an error points into the file that set the value, even after a merge", () => {
    const err = () =>
      configFromSources(
        [
          { file: "1.hcl", text: `${MIN}ports { http = 1 }` },
          { file: "2.hcl", text: "\n\nports { rpc = 1 }" },
        ],
        ENV,
      );
    expect(err).toThrow(
      new ConfigError({ file: "2.hcl", line: 3, col: 15 }, "ports.rpc: ports.http and ports.rpc must differ (both are 1)"),
    );
  });
});

describe("files and directories", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "edgenode-config-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a directory's *.hcl files merge in name order; other files are ignored", async () => {
    const d = join(dir, "conf.d");
    await mkdir(join(d, "sub.hcl"), { recursive: true }); // a directory named *.hcl is skipped
    await writeFile(join(d, "10-base.hcl"), `${MIN}region = "ten"\ndatacenter = "ten"`);
    await writeFile(join(d, "20-site.hcl"), 'region = "twenty"');
    await writeFile(join(d, "9-late.hcl"), 'datacenter = "nine"'); // "9" sorts after "20"
    await writeFile(join(d, "README.md"), "not = config {");
    await writeFile(join(d, "x.hcl.bak"), "not = config {");
    const cfg = await loadConfig([d], ENV);
    expect(cfg.region).toBe("twenty");
    expect(cfg.datacenter).toBe("nine");
  });

  test("paths merge in the order given, files and directories mixed", async () => {
    const a = join(dir, "a.hcl");
    const d = join(dir, "d2");
    await mkdir(d, { recursive: true });
    await writeFile(a, `${MIN}log_level = "warn"\nname = "a"`);
    await writeFile(join(d, "x.hcl"), 'name = "from-dir"');
    expect((await loadConfig([a, d], ENV)).name).toBe("from-dir");
    expect((await loadConfig([d, a], ENV)).name).toBe("a");
  });

  test("errors name the real file path", async () => {
    const f = join(dir, "bad.hcl");
    await writeFile(f, `${MIN}\nports {\n  http = true\n}\n`);
    await expect(loadConfig([f], ENV)).rejects.toThrow(`${f}:4:10: ports.http: expected a whole number from 1 to 65535 but found true`);
  });

  test("a missing path, and an oversized file, are ConfigErrors naming the file", async () => {
    const missing = join(dir, "nope.hcl");
    await expect(loadConfig([missing], ENV)).rejects.toThrow(
      new ConfigError({ file: missing, line: 0, col: 0 }, "cannot read configuration: no such file or directory"),
    );
    const big = join(dir, "big.hcl");
    await writeFile(big, `# ${"x".repeat(HCL_LIMITS.maxBytes)}`);
    await expect(loadConfig([big], ENV)).rejects.toThrow(
      `${big}: file is ${HCL_LIMITS.maxBytes + 2} bytes; the limit is ${HCL_LIMITS.maxBytes}`,
    );
  });

  test("config.example.hcl loads and sets every default", async () => {
    const cfg = await loadConfig([join(import.meta.dir, "../../config.example.hcl")], ENV);
    expect(cfg).toEqual(load(MIN));
  });

  test("config.example.hcl mentions every key", async () => {
    const text = await Bun.file(join(import.meta.dir, "../../config.example.hcl")).text();
    for (const [path] of KEYS) {
      const last = path.split(".").pop()!;
      expect({ path, mentioned: new RegExp(`\\b${last}\\b`).test(text) }).toEqual({ path, mentioned: true });
    }
  });
});

describe("-dev", () => {
  test("devConfig: loopback, default ports, bootstraps alone, ACLs off, caller's data dir", () => {
    const cfg = devConfig("/tmp/dev-x", ENV);
    expect(cfg.bind_addr).toBe("127.0.0.1");
    expect(cfg.advertise).toEqual({ http: "127.0.0.1:4646", rpc: "127.0.0.1:4647" });
    expect(cfg.ports).toEqual({ http: 4646, rpc: 4647 });
    expect(cfg.server.bootstrap_expect).toBe(1);
    expect(cfg.server.enabled).toBe(true);
    expect(cfg.acl.enabled).toBe(false);
    expect(cfg.data_dir).toBe("/tmp/dev-x");
    expect(cfg.snapshot_schedule.path).toBe("/tmp/dev-x/backups");
    expect(cfg.name).toBe("testhost");
  });

  test("files apply on top of -dev, and data_dir is not required", () => {
    const cfg = configFromSources([{ file: "a.hcl", text: 'log_level = "debug"\nports { http = 5646 }' }], {
      ...ENV,
      dev: true,
      dataDir: "/tmp/d",
    });
    expect(cfg.log_level).toBe("DEBUG");
    expect(cfg.ports.http).toBe(5646);
    expect(cfg.advertise.http).toBe("127.0.0.1:5646");
    expect(cfg.data_dir).toBe("/tmp/d");
  });

  test("without -dev, no files means data_dir is missing", () => {
    expect(() => configFromSources([], ENV)).toThrow(
      "(no configuration files): data_dir: expected a directory path, but it is not set (it is required unless -dev)",
    );
  });
});

describe("redactConfig", () => {
  test("secret-bearing keys are elided, file paths are not, the input is unchanged", () => {
    const cfg = load(`${MIN}tls {\n  http = true\n  cert_file = "/c.pem"\n  key_file = "/k.pem"\n}`);
    const withSecrets = {
      ...cfg,
      acl: { ...cfg.acl, replication_token: "s3cret", token_file: "/t" },
      encrypt: "abc",
      nested: [{ secret_id: "x", empty_token: "" }],
    } as unknown as Config;
    const r = redactConfig(withSecrets) as Record<string, any>;
    expect(r.acl.replication_token).toBe(REDACTED);
    expect(r.acl.token_file).toBe("/t");
    expect(r.encrypt).toBe(REDACTED);
    expect(r.nested[0].secret_id).toBe(REDACTED);
    expect(r.nested[0].empty_token).toBe("");
    expect(r.tls.key_file).toBe("/k.pem");
    expect(r.tls.cert_file).toBe("/c.pem");
    expect(r.ports).toEqual({ http: 4646, rpc: 4647 });
    expect((withSecrets as unknown as Record<string, any>).acl.replication_token).toBe("s3cret");
    expect(JSON.stringify(redactConfig(cfg))).toBe(JSON.stringify(cfg));
  });
});
