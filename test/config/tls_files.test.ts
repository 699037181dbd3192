// TLS files named by the configuration are checked at load: a missing, unreadable or non-PEM
// certificate, key or CA file fails with the `file:line:col` of the key that names it (SPEC §2).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config/config_error.ts";
import { loadConfig } from "../../src/config/load.ts";

let dir: string;
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edgenode-tls-files-"));
  await writeFile(join(dir, "ca.pem"), PEM);
  await writeFile(join(dir, "cert.pem"), PEM);
  await writeFile(join(dir, "key.pem"), "-----BEGIN PRIVATE KEY-----\nMC4\n-----END PRIVATE KEY-----\n");
  await writeFile(join(dir, "junk.pem"), "not a certificate\n");
  await mkdir(join(dir, "adir"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Lines 5, 6, 7 name the CA, certificate and key; each value starts in column 15. */
async function loadWith(files: { ca: string; cert: string; key: string }, http = "true", rpc = "true"): Promise<string> {
  const file = join(dir, "agent.hcl");
  await writeFile(
    file,
    `data_dir = "${join(dir, "data")}"\ntls {\n  http      = ${http}\n  rpc       = ${rpc}\n  ca_file   = "${files.ca}"\n  cert_file = "${files.cert}"\n  key_file  = "${files.key}"\n}\n`,
  );
  try {
    await loadConfig([file]);
    return "loaded";
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message.replaceAll(dir, "D");
  }
}

const good = () => ({ ca: join(dir, "ca.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") });

test("readable PEM files load", async () => {
  expect(await loadWith(good())).toBe("loaded");
});

test("a missing certificate, key or CA file names the config file's line, column and key", async () => {
  expect(await loadWith({ ...good(), cert: join(dir, "nope.pem") })).toBe(
    `D/agent.hcl:6:15: tls.cert_file: cannot read "D/nope.pem": no such file or directory`,
  );
  expect(await loadWith({ ...good(), key: join(dir, "nope.pem") })).toBe(
    `D/agent.hcl:7:15: tls.key_file: cannot read "D/nope.pem": no such file or directory`,
  );
  expect(await loadWith({ ...good(), ca: join(dir, "nope.pem") })).toBe(
    `D/agent.hcl:5:15: tls.ca_file: cannot read "D/nope.pem": no such file or directory`,
  );
});

test("every bad file is listed in file order, each at its own key; a directory or a non-PEM file is refused too", async () => {
  expect(await loadWith({ ca: join(dir, "adir"), cert: join(dir, "junk.pem"), key: join(dir, "gone.pem") })).toBe(
    [
      `D/agent.hcl:5:15: tls.ca_file: "D/adir" is not a file`,
      `D/agent.hcl:6:15: tls.cert_file: "D/junk.pem" holds no PEM block (no "-----BEGIN " line)`,
      `D/agent.hcl:7:15: tls.key_file: cannot read "D/gone.pem": no such file or directory`,
    ].join("\n"),
  );
});

test("with TLS off the files are not read", async () => {
  expect(await loadWith({ ca: join(dir, "x"), cert: join(dir, "y"), key: join(dir, "z") }, "false", "false")).toBe("loaded");
});
