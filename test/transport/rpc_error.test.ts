// The transport's boundary: its internal failures cross as table codes, and a peer's error is read
// back as one, whatever the peer sent.
import { describe, expect, test } from "bun:test";
import { EdgeError, hasCode } from "../../src/lib/errors.ts";
import { SessionClosedError } from "../../src/transport/mux_session.ts";
import { StreamClosedError } from "../../src/transport/mux_stream.ts";
import { errorFromWire, errorToWire } from "../../src/transport/rpc_error.ts";
import { DialError } from "../../src/transport/dial.ts";

describe("rpc errors on the wire", () => {
  test("transport failures travel as table codes with their messages", () => {
    expect(errorToWire(new StreamClosedError("RESET", "stream 3 reset by peer"))).toEqual({
      Code: "ABORTED",
      Message: "stream 3 reset by peer",
    });
    expect(errorToWire(new SessionClosedError("session closed: shutting down")).Code).toBe("DISCONNECTED");
    expect(errorToWire(new DialError("dial x:1: refused")).Code).toBe("UNAVAILABLE");
  });

  test("an EdgeError keeps its code and detail; an fs error or a plain Error is INTERNAL", () => {
    expect(errorToWire(new EdgeError("CONFLICT", "cas", { Index: 4 }))).toEqual({ Code: "CONFLICT", Message: "cas", Detail: { Index: 4 } });
    expect(errorToWire(Object.assign(new Error("gone"), { code: "ENOENT" }))).toEqual({ Code: "INTERNAL", Message: "gone" });
    expect(errorToWire(new Error("x".repeat(5000))).Message.length).toBe(4097);
  });

  test("a code outside the table from a peer arrives as RPC; a table code passes through", () => {
    const odd = errorFromWire({ Code: "SESSION_CLOSED", Message: "old peer" });
    expect([odd.code, odd.message, odd.status]).toEqual(["RPC", "old peer", 500]);
    const known = errorFromWire({ Code: "NO_LEADER", Message: "No cluster leader" });
    expect(hasCode(known, "NO_LEADER")).toBe(true);
    expect(known.status).toBe(503);
    expect(errorFromWire("junk").code).toBe("RPC");
  });
});
