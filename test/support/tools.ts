// The programs the suite runs besides Bun (go, openssl, curl). CI installs them from Debian's
// packages (.ci/run); a test that needs one fails when it is missing instead of skipping, so a
// machine without them cannot pass while proving less.

/** The path of `bin` on $PATH; throws naming the Debian package .ci/run installs for it. */
export function requireTool(bin: string, debianPackage: string): string {
  const path = Bun.which(bin);
  if (!path) throw new Error(`${bin} not found: .ci/run installs ${debianPackage} (apt-get install -y ${debianPackage})`);
  return path;
}
