// The typed face of Backend.call: it passes the call through unchanged, and `tsc -p .` (npm test's
// first step) refuses a call whose method, arguments or use of the reply the endpoint table does
// not allow: each `@ts-expect-error` below fails the type check if the line stops being an error.
import { expect, test } from "bun:test";
import { typedCall, type Backend, type CallResult, type Reply } from "../../src/server/backend.ts";

function recording(reply: unknown): { b: Backend; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const b: Backend = {
    async call(method, args, q): Promise<CallResult> {
      calls.push([method, args, q]);
      return { reply, meta: { index: 3, knownLeader: true, lastContactMs: 0 } };
    },
    snapshotSave: () => Promise.reject(new Error("unused")),
    snapshotRestore: () => Promise.reject(new Error("unused")),
    self: () => ({}),
    health: () => ({ ok: true, message: "ok" }),
    metrics: () => ({}),
  };
  return { b, calls };
}

test("a typed call is the backend's call by name, arguments, options and reply untouched", async () => {
  const v = { Path: "a", Items: { k: "v" }, CreateIndex: 4, ModifyIndex: 4, CreateTime: 1, ModifyTime: 1 };
  const { b, calls } = recording(v);
  const call = typedCall(b);
  const args = { path: "a", items: { k: "v" }, cas: 4 };
  const res = await call("Var.Put", args, { token: "t", region: "east" });
  expect(calls).toEqual([["Var.Put", args, { token: "t", region: "east" }]]);
  expect(calls[0]![1]).toBe(args);
  expect(res).toEqual({ reply: v, meta: { index: 3, knownLeader: true, lastContactMs: 0 } });
});

test("the endpoint table types every method's arguments and reply", async () => {
  const { b } = recording(null);
  const call = typedCall(b);
  const q = {};
  const got = await call("Var.Get", { path: "a" }, q);
  // A missing variable is null: the reply type says so, and reading it unchecked does not compile.
  const modify: number | undefined = got.reply?.ModifyIndex;
  expect(modify).toBeUndefined();
  // @ts-expect-error the reply may be null
  expect(() => got.reply.ModifyIndex).toThrow(TypeError);

  const rejected = [
    // @ts-expect-error no such method
    () => call("Var.Gett", { path: "a" }, q),
    // @ts-expect-error Var.Put needs items
    () => call("Var.Put", { path: "a" }, q),
    // @ts-expect-error cas is a number
    () => call("Var.Put", { path: "a", items: {}, cas: "4" }, q),
    // @ts-expect-error items are strings
    () => call("Var.LockAcquire", { path: "a", items: { k: 1 } }, q),
    // @ts-expect-error an accessor ID, not a name
    () => call("ACL.GetToken", { name: "x" }, q),
  ];
  expect(rejected).toHaveLength(5);

  const page: Reply<"Var.List"> = { vars: [], nextToken: "b" };
  // @ts-expect-error a listing is a page of variables, not an array
  const notPage: Reply<"Var.List"> = [];
  const config: Reply<"Operator.RaftGetConfiguration"> = { Index: 1, ClusterVersion: "0.2.0", Servers: [] };
  // @ts-expect-error the token list is an array of tokens
  const tokens: Reply<"ACL.ListTokens"> = { AccessorID: "a" };
  expect([page, notPage, config, tokens]).toHaveLength(4);
});
