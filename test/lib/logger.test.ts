// The logger: hclog's text line shape, JSON lines, levels and their runtime change, sub-loggers,
// value quoting and bounds.
import { describe, expect, test } from "bun:test";
import { createLogger, LEVELS, MAX_VALUE_CHARS, silentLogger, type Level, type LoggerOptions } from "../../src/lib/logger.ts";

const T = new Date("2026-01-02T15:04:05.000Z");

function capture(opts: LoggerOptions = {}) {
  const lines: string[] = [];
  const logger = createLogger({ now: () => T, write: (l) => lines.push(l), ...opts });
  return { logger, lines };
}

describe("text lines", () => {
  test("hclog shape: timestamp, level padded in brackets, name, message, key=value", () => {
    const { logger, lines } = capture({ level: "TRACE" });
    const agent = logger.named("agent");
    agent.info("started", { http: "127.0.0.1:4646", rpc: "127.0.0.1:4647" });
    agent.error("failed");
    agent.warn("slow", { ms: 12.5 });
    agent.debug("d");
    agent.trace("t", { ok: true });
    expect(lines).toEqual([
      "2026-01-02T15:04:05.000Z [INFO]  agent: started: http=127.0.0.1:4646 rpc=127.0.0.1:4647\n",
      "2026-01-02T15:04:05.000Z [ERROR] agent: failed\n",
      "2026-01-02T15:04:05.000Z [WARN]  agent: slow: ms=12.5\n",
      "2026-01-02T15:04:05.000Z [DEBUG] agent: d\n",
      "2026-01-02T15:04:05.000Z [TRACE] agent: t: ok=true\n",
    ]);
  });

  test("named loggers nest with dots; the root has no name", () => {
    const { logger, lines } = capture();
    logger.info("root");
    logger.named("agent").named("http").info("x");
    expect(lines).toEqual(["2026-01-02T15:04:05.000Z [INFO]  root\n", "2026-01-02T15:04:05.000Z [INFO]  agent.http: x\n"]);
  });

  test("values are quoted when they hold spaces, quotes, '=' or control characters", () => {
    const { logger, lines } = capture();
    logger.info("m", {
      a: "plain",
      b: "two words",
      c: "",
      d: 'q"uote',
      e: "k=v",
      f: "line\nbreak",
      g: null,
      h: undefined,
      i: 10n,
      j: new Error("boom now"),
      k: [1, "x"],
      l: { y: 1 },
    });
    expect(lines[0]).toBe(
      '2026-01-02T15:04:05.000Z [INFO]  m: a=plain b="two words" c="" d="q\\"uote" e="k=v" f="line\\nbreak" g=<nil> h=undefined i=10 j="boom now" k=[1,"x"] l={"y":1}\n',
    );
  });

  test("JSON values with whitespace inside are quoted as a whole", () => {
    const { logger, lines } = capture();
    logger.info("m", { l: ["a b"] });
    expect(lines[0]).toBe('2026-01-02T15:04:05.000Z [INFO]  m: l="[\\"a b\\"]"\n');
  });

  test("a newline in the message cannot forge a second line", () => {
    const { logger, lines } = capture();
    logger.info("a\n2026-01-02T00:00:00.000Z [ERROR] fake");
    expect(lines).toHaveLength(1);
    expect(lines[0]!.split("\n")).toHaveLength(2);
    expect(lines[0]).toBe("2026-01-02T15:04:05.000Z [INFO]  a\\n2026-01-02T00:00:00.000Z [ERROR] fake\n");
  });

  test("long values are cut", () => {
    const { logger, lines } = capture();
    logger.info("m", { v: "x".repeat(MAX_VALUE_CHARS + 10) });
    expect(lines[0]).toBe(`2026-01-02T15:04:05.000Z [INFO]  m: v="${"x".repeat(MAX_VALUE_CHARS)}…(10 more)"\n`);
  });
});

describe("JSON lines", () => {
  test("hclog's @ keys, then the fields", () => {
    const { logger, lines } = capture({ json: true });
    logger.named("agent").info("started", { http: "127.0.0.1:4646", n: 3, err: new Error("e"), big: 5n, "@level": "forged" });
    expect(lines[0]!.endsWith("\n")).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({
      "@level": "info",
      "@message": "started",
      "@module": "agent",
      "@timestamp": "2026-01-02T15:04:05.000Z",
      http: "127.0.0.1:4646",
      n: 3,
      err: "e",
      big: "5",
    });
    logger.warn("x\ny");
    expect(lines[1]!.split("\n")).toHaveLength(2);
    expect(JSON.parse(lines[1]!)).toEqual({ "@level": "warn", "@message": "x\ny", "@timestamp": "2026-01-02T15:04:05.000Z" });
  });

  test("a cyclic field does not throw", () => {
    const { logger, lines } = capture({ json: true });
    const o: Record<string, unknown> = {};
    o.self = o;
    logger.info("c", { o });
    expect(JSON.parse(lines[0]!).o).toBe("<unserializable>");
  });
});

describe("levels", () => {
  test("each level lets through itself and above", () => {
    for (const lvl of LEVELS) {
      const { logger, lines } = capture({ level: lvl });
      for (const l of LEVELS) logger[l.toLowerCase() as "info"](l);
      const got = lines.map((x) => /\[(\w+)\]/.exec(x)![1]);
      expect({ lvl, got }).toEqual({ lvl, got: LEVELS.slice(LEVELS.indexOf(lvl)) as unknown as string[] });
    }
  });

  test("setLevel on any named logger changes them all (SIGHUP reload)", () => {
    const { logger, lines } = capture({ level: "INFO" });
    const a = logger.named("a");
    const b = logger.named("b");
    a.debug("hidden");
    expect(lines).toHaveLength(0);
    b.setLevel("DEBUG");
    a.debug("shown");
    expect(logger.level).toBe("DEBUG");
    expect(a.isEnabled("TRACE")).toBe(false);
    expect(a.isEnabled("DEBUG")).toBe(true);
    logger.setLevel("ERROR");
    b.warn("hidden");
    expect(lines).toEqual(["2026-01-02T15:04:05.000Z [DEBUG] a: shown\n"]);
  });

  test("unknown levels are refused", () => {
    expect(() => createLogger({ level: "LOUD" as Level })).toThrow('unknown log level "LOUD"');
    expect(() => createLogger().setLevel("info" as Level)).toThrow('unknown log level "info"');
  });

  test("disabled levels do no work on their fields", () => {
    const { logger } = capture({ level: "ERROR" });
    let touched = false;
    const fields = {
      get v() {
        touched = true;
        return 1;
      },
    };
    logger.debug("x", fields);
    expect(touched).toBe(false);
  });
});

describe("output", () => {
  test("a failing writer does not throw into the caller", () => {
    const logger = createLogger({
      write: () => {
        throw new Error("EPIPE");
      },
    });
    expect(() => logger.error("x")).not.toThrow();
  });

  test("silentLogger writes nothing and accepts every call", () => {
    const l = silentLogger().named("x");
    l.error("e");
    l.setLevel("TRACE");
    l.trace("t");
    expect(l.level).toBe("TRACE");
  });

  test("the default writer is stderr", async () => {
    const proc = Bun.spawn(
      [
        process.execPath,
        "-e",
        `import { createLogger } from "${new URL("../../src/lib/logger.ts", import.meta.url).pathname}"; createLogger().named("agent").info("hello", { a: 1 });`,
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(out).toBe("");
    expect(err).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[INFO\] {2}agent: hello: a=1\n$/);
  });
});
