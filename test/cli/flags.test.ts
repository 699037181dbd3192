// Go-style flag forms, -help, unknown commands and flags, exit codes.
import { describe, expect, test } from "bun:test";
import { dispatch, type Command, type Io } from "../../src/cli/command.ts";
import { parseFlags, type FlagSpec } from "../../src/cli/flags.ts";

const specs: FlagSpec[] = [
  { name: "address", kind: "string", help: "addr", env: "EDGENODE_ADDR", default: "http://127.0.0.1:4646" },
  { name: "stale", kind: "bool", help: "stale" },
  { name: "cas", kind: "int", help: "cas" },
  { name: "config", kind: "strings", help: "config" },
];

describe("flags", () => {
  test("-flag value, -flag=value, --flag value, --flag=value", () => {
    for (const argv of [["-address", "x"], ["-address=x"], ["--address", "x"], ["--address=x"]]) {
      const f = parseFlags(specs, [...argv, "arg"], {});
      expect(f.values.get("address")).toBe("x");
      expect(f.args).toEqual(["arg"]);
    }
  });
  test("booleans", () => {
    expect(parseFlags(specs, ["-stale"], {}).values.get("stale")).toBe(true);
    expect(parseFlags(specs, ["-stale=false"], {}).values.get("stale")).toBe(false);
    expect(() => parseFlags(specs, ["-stale=maybe"], {})).toThrow('invalid boolean value "maybe" for -stale');
  });
  test("ints are checked", () => {
    expect(parseFlags(specs, ["-cas", "5"], {}).values.get("cas")).toBe(5);
    expect(() => parseFlags(specs, ["-cas", "x"], {})).toThrow('invalid integer value "x" for -cas');
  });
  test("repeatable flags accumulate", () => {
    expect(parseFlags(specs, ["-config", "a", "-config=b"], {}).values.get("config")).toEqual(["a", "b"]);
  });
  test("env and defaults; flags win over env", () => {
    expect(parseFlags(specs, [], {}).values.get("address")).toBe("http://127.0.0.1:4646");
    expect(parseFlags(specs, [], { EDGENODE_ADDR: "http://e" }).values.get("address")).toBe("http://e");
    expect(parseFlags(specs, ["-address", "http://f"], { EDGENODE_ADDR: "http://e" }).values.get("address")).toBe("http://f");
  });
  test("parsing stops at the first non-flag and at --", () => {
    expect(parseFlags(specs, ["a", "-stale"], {}).args).toEqual(["a", "-stale"]);
    expect(parseFlags(specs, ["--", "-stale"], {}).args).toEqual(["-stale"]);
  });
  test("unknown flag and missing argument", () => {
    expect(() => parseFlags(specs, ["-nope"], {})).toThrow("flag provided but not defined: -nope");
    expect(() => parseFlags(specs, ["-address"], {})).toThrow("flag needs an argument: -address");
  });
});

function capture(): Io & { outs: string[]; errs: string[] } {
  const outs: string[] = [];
  const errs: string[] = [];
  return { outs, errs, out: (s) => outs.push(s), err: (s) => errs.push(s), errIsTTY: false, env: {} };
}

const cmds: Command[] = [
  {
    path: ["var", "get"],
    synopsis: "get a var",
    usage: "PATH",
    flags: specs,
    doing: "reading the variable",
    run: async (f, io) => {
      io.out(`got ${f.args[0]}`);
      return 0;
    },
  },
  {
    path: ["var", "put"],
    synopsis: "put a var",
    usage: "PATH",
    flags: [],
    doing: "writing the variable",
    run: async () => {
      throw new Error("boom");
    },
  },
  { path: ["version"], synopsis: "version", usage: "", flags: [], doing: "printing", run: async () => 0 },
];

describe("dispatch", () => {
  test("runs the longest matching command", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["var", "get", "a/b"], io)).toBe(0);
    expect(io.outs).toEqual(["got a/b"]);
  });
  test("-help on a command prints usage to stdout and exits 0", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["var", "get", "-help"], io)).toBe(0);
    expect(io.outs[0]).toContain("Usage: node var get PATH");
    expect(io.outs[0]).toContain("-address");
  });
  test("-help on a group lists its subcommands", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["var", "-help"], io)).toBe(0);
    expect(io.outs[0]).toContain("var get");
    expect(io.outs[0]).toContain("var put");
  });
  test("unknown command exits 1 with an Error line", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["frobnicate"], io)).toBe(1);
    expect(io.errs[0]).toStartWith('Error: unknown command "frobnicate"');
    expect(io.outs).toEqual([]);
  });
  test("unknown subcommand exits 1", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["var", "zap"], io)).toBe(1);
    expect(io.errs[0]).toStartWith('Error: unknown command "var zap"');
  });
  test("unknown flag exits 1", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["var", "get", "-bogus", "x"], io)).toBe(1);
    expect(io.errs[0]).toStartWith("Error parsing flags: flag provided but not defined: -bogus");
  });
  test("a failing command prints Error <doing>: <detail> and exits 1", async () => {
    const io = capture();
    expect(await dispatch(cmds, ["var", "put", "x"], io)).toBe(1);
    expect(io.errs).toEqual(["Error writing the variable: boom"]);
  });
  test("no arguments prints help and exits 1", async () => {
    const io = capture();
    expect(await dispatch(cmds, [], io)).toBe(1);
    expect(io.outs[0]).toContain("Available commands");
  });
});
