// One error family: every error class src/ exports is an EdgeError, whose code must be in the status
// table; transport reasons and HTTP statuses map onto the table's codes; hasCode is the one code test.
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { join } from "node:path";
import { codeOfStatus, EdgeError, ERROR_STATUS, type ErrorCode, hasCode, isErrorCode, toEdgeError } from "../../src/lib/errors.ts";
import { type TransportReason, transportCode } from "../../src/transport/transport_error.ts";

const SRC = join(import.meta.dir, "../../src");
/** The entry point runs the CLI when imported; it declares no error class. */
const NOT_IMPORTED = new Set(["main.ts"]);

async function exportedErrorClasses(): Promise<Array<{ file: string; name: string; cls: unknown }>> {
  const out: Array<{ file: string; name: string; cls: unknown }> = [];
  for await (const file of new Glob("**/*.ts").scan(SRC)) {
    if (NOT_IMPORTED.has(file)) continue;
    const mod = (await import(join(SRC, file))) as Record<string, unknown>;
    for (const [name, v] of Object.entries(mod)) {
      if (typeof v === "function" && v.prototype instanceof Error) out.push({ file, name, cls: v });
    }
  }
  return out;
}

describe("the error family", () => {
  test("every error class src/ exports is an EdgeError (so its code is typed and checked against the table)", async () => {
    const classes = await exportedErrorClasses();
    // The scan must see the family itself, or it proves nothing.
    for (const name of ["RpcError", "StreamClosedError", "ApiError", "DiskError", "ConfigError", "SnapshotFormatError", "CompactedError"]) {
      expect(classes.map((c) => c.name)).toContain(name);
    }
    const outside = classes
      .filter((c) => c.cls !== EdgeError && !((c.cls as { prototype: unknown }).prototype instanceof EdgeError))
      .map((c) => `${c.file}: ${c.name}`);
    expect(outside).toEqual([]);
  });

  test("an EdgeError refuses a code outside the table", () => {
    expect(() => new EdgeError("NO_SUCH_CODE" as ErrorCode, "x")).toThrow("not in the status table");
    for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) expect(new EdgeError(code, "x").status).toBe(ERROR_STATUS[code]);
  });

  test("every transport reason crosses as a table code", () => {
    const reasons: TransportReason[] = ["RESET", "WRITE_CLOSED", "SESSION_CLOSED", "PROTOCOL_ERROR", "HANDSHAKE", "DIAL"];
    for (const r of reasons) expect(isErrorCode(transportCode(r))).toBe(true);
    expect(transportCode("RESET")).toBe("ABORTED");
    expect(transportCode("SESSION_CLOSED")).toBe("DISCONNECTED");
  });

  test("an HTTP status reads as a table code", () => {
    expect(codeOfStatus(404)).toBe("NOT_FOUND");
    expect(codeOfStatus(409)).toBe("CONFLICT");
    expect(codeOfStatus(503)).toBe("NO_LEADER");
    expect(codeOfStatus(0)).toBe("UNAVAILABLE");
    expect(codeOfStatus(429)).toBe("BAD_REQUEST");
    expect(codeOfStatus(502)).toBe("INTERNAL");
    expect(codeOfStatus(200)).toBe("INTERNAL");
  });

  test("hasCode reads an EdgeError or a {code} off the wire, and nothing else", () => {
    expect(hasCode(new EdgeError("CONFLICT", "x"), "NOT_FOUND", "CONFLICT")).toBe(true);
    expect(hasCode({ code: "TIMEOUT" }, "TIMEOUT")).toBe(true);
    expect(hasCode(new EdgeError("CONFLICT", "x"), "NOT_FOUND")).toBe(false);
    expect(hasCode(new Error("CONFLICT"), "CONFLICT")).toBe(false);
    expect(hasCode(null, "CONFLICT")).toBe(false);
    expect(hasCode("CONFLICT", "CONFLICT")).toBe(false);
  });

  test("toEdgeError keeps a table code and message, and makes anything else INTERNAL", () => {
    const kept = toEdgeError({ code: "NOT_FOUND", message: "gone" });
    expect([kept.code, kept.message, kept.status]).toEqual(["NOT_FOUND", "gone", 404]);
    const other = toEdgeError(Object.assign(new Error("no file"), { code: "ENOENT" }));
    expect([other.code, other.message, other.status]).toEqual(["INTERNAL", "no file", 500]);
  });
});
