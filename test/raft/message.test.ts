// Messages survive the one CBOR codec unchanged and still pass the shape check.
import { expect, test } from "bun:test";
import { decode, encode } from "../../src/lib/codec.ts";
import { isWellFormed, message } from "../../src/raft/message.ts";
import { TestNet, bytes } from "./network.ts";

/** Byte strings as arrays, so a decoded Buffer compares equal to the Uint8Array sent. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x);
    return out;
  }
  return v;
}

test("every message a cluster sends round-trips through CBOR and stays well-formed", () => {
  const net = new TestNet(["a", "b", "c"]);
  const a = net.elect("a");
  a.raw.propose(bytes("hello"));
  a.raw.readIndex("r");
  net.stabilize();
  a.storage.snapshot = { index: 2, term: 1, config: a.raw.status().config };
  a.raw.forceSnapshot("b");
  net.stabilize();
  const types = new Set<string>();
  for (const m of net.sent) {
    const back = decode(encode(m));
    expect(isWellFormed(back)).toBe(true);
    expect(plain(back)).toEqual(plain(m));
    types.add(m.type);
  }
  for (const t of ["app", "appResp", "heartbeat", "heartbeatResp", "vote", "voteResp", "snap"]) expect(types.has(t)).toBe(true);
});

test("the shape check rejects what a peer must not send", () => {
  const ok = message({ type: "app", from: "b", to: "a", term: 1, entries: [{ index: 1, term: 1, type: 0, data: bytes("x") }] });
  expect(isWellFormed(ok)).toBe(true);
  expect(isWellFormed({ ...ok, term: 2 ** 53 })).toBe(false);
  expect(isWellFormed({ ...ok, from: "" })).toBe(false);
  expect(isWellFormed({ ...ok, context: "x".repeat(5000) })).toBe(false);
  expect(isWellFormed({ ...ok, entries: [{ index: 1, term: 1, type: 9, data: bytes("x") }] })).toBe(false);
  expect(isWellFormed({ ...ok, entries: [{ index: 1, term: 1, type: 0, data: "x" }] })).toBe(false);
  expect(isWellFormed({ ...ok, snapshot: { index: 1, term: 1, config: { servers: [{ id: 1 }] } } })).toBe(false);
});
