// The previous release's binary, built from this repository's own history: the commit named in
// test/upgrade/previous-release is checked out as a detached worktree under build/, given its own
// `npm ci` and `bun run build`, and its binary kept under build/ keyed by the commit, so later runs
// (and other test files) reuse it. Needs a clone with history (CI's `git clone` has it).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../support/wait.ts";

const ROOT = join(import.meta.dir, "..", "..");
/** npm ci and a compile of a whole tree on a loaded 2-core machine. */
const BUILD_TIMEOUT_MS = 600_000;

export interface PreviousRelease {
  commit: string;
  version: string;
}

/** The commit and version recorded in test/upgrade/previous-release (the first line that is not a comment). */
export function previousRelease(): PreviousRelease {
  const line = readFileSync(join(import.meta.dir, "previous-release"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#"));
  const [commit, version] = (line ?? "").split(/\s+/);
  if (!commit || !/^[0-9a-f]{40}$/.test(commit) || !version) throw new Error(`test/upgrade/previous-release: no "<commit> <version>" line`);
  return { commit, version };
}

async function run(cmd: string[], cwd: string, what: string): Promise<void> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, CI: "true" } });
  const timer = setTimeout(() => p.kill("SIGKILL"), BUILD_TIMEOUT_MS);
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${err.slice(-2000)}${out.slice(-1000)}`);
}

/**
 * The path of the previous release's binary, building it first when build/ has none for its commit.
 * Concurrent callers (test files in parallel) wait for one build: the first takes a lock directory.
 */
export async function previousReleaseBinary(): Promise<string> {
  const { commit } = previousRelease();
  const binary = join(ROOT, "build", `release-${commit}.node`);
  if (existsSync(binary)) return binary;
  const lock = join(ROOT, "build", `release-${commit}.lock`);
  try {
    mkdirSync(lock);
  } catch {
    // Another process builds it: wait for its binary (or for its lock to go, when it failed).
    await waitFor(
      () => existsSync(binary) || !existsSync(lock) || undefined,
      BUILD_TIMEOUT_MS,
      `the previous release ${commit} to build`,
      500,
    );
    if (existsSync(binary)) return binary;
    throw new Error(`building the previous release ${commit} failed in another process`);
  }
  const src = join(ROOT, "build", `release-${commit}`);
  try {
    // A tree left by an interrupted build is made again from the commit.
    if (existsSync(src)) await run(["git", "worktree", "remove", "--force", src], ROOT, "git worktree remove");
    rmSync(src, { recursive: true, force: true });
    await run(["git", "worktree", "prune"], ROOT, "git worktree prune");
    await run(["git", "worktree", "add", "--detach", src, commit], ROOT, `git worktree add of ${commit}`);
    await run(["npm", "ci", "--no-audit", "--no-fund"], src, `npm ci in ${src}`);
    await run([join(src, "node_modules", ".bin", "bun"), "run", "build"], src, `bun run build in ${src}`);
    const tmp = `${binary}.${process.pid}`;
    copyFileSync(join(src, "build", "node"), tmp);
    renameSync(tmp, binary);
    return binary;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await previousReleaseBinary());
