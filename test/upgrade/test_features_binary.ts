// build/node-test-features: the current binary with the test-only features compiled in
// (build/build.ts --test-features), rebuilt when older than the sources, copied into the test's own
// directory so that a rebuild cannot swap it under a running test.
import { copyFileSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const BINARY = join(ROOT, "build", "node-test-features");
const BUILD_TIMEOUT_MS = 120_000;

function newest(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n = Math.max(n, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return n;
}

export async function testFeaturesBinary(dir: string): Promise<string> {
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < newest(join(ROOT, "src"))) {
    const p = Bun.spawn([process.execPath, join(ROOT, "build", "build.ts"), "--test-features"], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => p.kill("SIGKILL"), BUILD_TIMEOUT_MS);
    const code = await p.exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`build --test-features failed (exit ${code}): ${await new Response(p.stderr).text()}`);
  }
  const copy = join(dir, "node-test-features");
  copyFileSync(BINARY, copy);
  return copy;
}
