// Compiles src/main.ts into one self-contained binary at build/node, with the
// version and git commit embedded. `--release` also cross-compiles arm64 and
// x64-baseline and checks each is an ELF of the right machine. `--test-features`
// builds build/node-test-features instead, with the test-only features compiled in
// (src/server/features.ts), for the tests of the feature gate; never shipped.
import { $ } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const commit = (await $`git -C ${root} rev-parse --short=12 HEAD`.nothrow().quiet()).stdout.toString().trim() || "unknown";
const dirty = (await $`git -C ${root} status --porcelain --untracked-files=no`.nothrow().quiet()).stdout.toString().trim() ? "-dirty" : "";

interface Target {
  bunTarget?: string;
  out: string;
  elfMachine?: number;
  name: string;
}
const testFeatures = process.argv.includes("--test-features");
const targets: Target[] = [testFeatures ? { out: "node-test-features", name: "native, test features" } : { out: "node", name: "native" }];
if (process.argv.includes("--release")) {
  targets.push(
    { bunTarget: "bun-linux-arm64", out: "node-linux-arm64", elfMachine: 0xb7, name: "linux-arm64" },
    { bunTarget: "bun-linux-x64-baseline", out: "node-linux-x64-baseline", elfMachine: 0x3e, name: "linux-x64-baseline" },
  );
}

for (const t of targets) {
  const outfile = join(root, "build", t.out);
  const args = [
    "build",
    "--compile",
    "--minify-syntax",
    "--sourcemap=none",
    `--define=EDGENODE_VERSION=${JSON.stringify(pkg.version)}`,
    `--define=EDGENODE_GIT_COMMIT=${JSON.stringify(commit + dirty)}`,
    ...(testFeatures ? ["--define=EDGENODE_TEST_FEATURES=true"] : []),
    ...(t.bunTarget ? [`--target=${t.bunTarget}`] : []),
    join(root, "src/main.ts"),
    "--outfile",
    outfile,
  ];
  const proc = Bun.spawn([process.execPath, ...args], { stdout: "pipe", stderr: "pipe" });
  const code = await proc.exited;
  if (code !== 0) {
    process.stderr.write(await new Response(proc.stderr).text());
    console.error(`build ${t.name} failed (exit ${code})`);
    process.exit(1);
  }
  if (t.elfMachine !== undefined) {
    const head = new Uint8Array(await Bun.file(outfile).slice(0, 20).arrayBuffer());
    const isElf = head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
    const machine = (head[18] ?? 0) | ((head[19] ?? 0) << 8);
    if (!isElf || machine !== t.elfMachine) {
      console.error(`build ${t.name}: ${outfile} is not an ELF for machine 0x${t.elfMachine.toString(16)} (got 0x${machine.toString(16)})`);
      process.exit(1);
    }
  }
  console.log(`built ${outfile} (${t.name}, ${pkg.version} ${commit}${dirty})`);
}

if (process.argv.includes("--release")) {
  // Run the arm64 binary under qemu-user where the machine has it.
  const qemu = Bun.which("qemu-aarch64-static") ?? Bun.which("qemu-aarch64");
  // The arm64 binary is dynamically linked: qemu-user needs an aarch64 loader and libc (Debian's libc6-arm64-cross).
  const sysroot = ["/usr/aarch64-linux-gnu", "/"].find((d) => existsSync(join(d, "lib/ld-linux-aarch64.so.1")));
  if (qemu && !sysroot) {
    console.log(`${qemu} found but no aarch64 loader (install libc6-arm64-cross): arm64 binary checked as ELF only`);
  } else if (qemu && sysroot) {
    const r = Bun.spawnSync([qemu, "-L", sysroot, join(root, "build/node-linux-arm64"), "version"], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) {
      console.error(`arm64 binary under ${qemu} failed: ${r.stderr.toString()}`);
      process.exit(1);
    }
    console.log(`arm64 under qemu: ${r.stdout.toString().split("\n")[0]}`);
  } else {
    console.log("qemu-aarch64 not found: arm64 binary checked as ELF only");
  }
}
