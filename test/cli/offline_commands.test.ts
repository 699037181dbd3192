// The offline commands' refusals that need no cluster (the compiled binary): a directory that is not a
// server's is refused by `operator raft recover` without being created or written; missing targets are named.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary } from "../cluster/harness.ts";

let work = "";
let binary = "";

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "edgenode-offline-cmd-"));
  binary = await compiledBinary(work);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function run(args: string[]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync([binary, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

test("recover refuses a missing directory without creating it", () => {
  const dir = join(work, "missing");
  const r = run(["operator", "raft", "recover", "-data-dir", dir, "-peers", "a=127.0.0.1:1"]);
  expect(r.code).toBe(1);
  expect(r.err).toBe(`Error recovering the Raft configuration: data directory ${dir} does not exist\n`);
  expect(existsSync(dir)).toBe(false);
});

test("recover refuses a directory that holds no server's raft state, writing nothing of a server", () => {
  const dir = join(work, "empty");
  mkdirSync(dir);
  const r = run(["operator", "raft", "recover", "-data-dir", dir, "-peers", "a=127.0.0.1:1"]);
  expect(r.code).toBe(1);
  expect(r.err).toContain(`${dir} holds no raft state (no raft/stable): not a server's data directory`);
  expect(readdirSync(dir)).toEqual(["agent.lock"]);
});

test("the offline commands name what they are missing", () => {
  const r1 = run(["operator", "raft", "recover"]);
  expect(r1.code).toBe(1);
  expect(r1.err).toContain("give -data-dir DIR, or -config PATH of the server");
  const file = join(work, "x.snap");
  writeFileSync(file, "x");
  const r2 = run(["operator", "snapshot", "restore", "-offline", "-data-dir", join(work, "seed"), file]);
  expect(r2.code).toBe(1);
  expect(r2.err).toContain("give -config PATH of the server, or -advertise HOST:PORT");
  expect(existsSync(join(work, "seed"))).toBe(false);
  const r3 = run(["operator", "raft", "recover", "-data-dir", join(work, "empty"), "-peers", ""]);
  expect(r3.code).toBe(1);
  expect(r3.err).toContain(`-peers "": expected ID=HOST:PORT,...`);
});
