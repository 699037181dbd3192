// The client over HTTPS: the CA from -ca-cert verifies the agent, an unknown CA fails, skip-verify
// connects anyway, and a client certificate is presented for mutual TLS; via the CLI flags too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient, ApiError } from "../../src/api/client.ts";
import { runCli } from "../../src/cli/cli.ts";
import { captureIo } from "../cli/capture_io.ts";
import { requireTool } from "../support/tools.ts";

const dir = mkdtempSync(join(tmpdir(), "edgenode-api-tls-"));
const pem = (n: string) => join(dir, n);
let server: ReturnType<typeof Bun.serve>;
let mtls: ReturnType<typeof Bun.serve>;

function openssl(args: string[]) {
  const r = Bun.spawnSync([requireTool("openssl", "openssl"), ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

function issue(name: string, cn: string, ext: string) {
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
  Bun.spawnSync(["sh", "-c", `printf '%s\\n' '${ext}' > ${name}.ext`], { cwd: dir });
  openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  ]);
}

beforeAll(() => {
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-subj",
    "/CN=edgenode test CA",
    "-days",
    "2",
    "-out",
    "ca.pem",
  ]);
  issue("server", "server.global.edgenode", "subjectAltName=IP:127.0.0.1");
  issue("client", "cli.edgenode", "extendedKeyUsage=clientAuth");
  const tls = { cert: readFileSync(pem("server.pem"), "utf8"), key: readFileSync(pem("server.key"), "utf8") };
  const fetch = () => Response.json([], { headers: { "X-Edgenode-Index": "3" } });
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", tls, fetch });
  mtls = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    tls: { ...tls, ca: readFileSync(pem("ca.pem"), "utf8"), requestCert: true, rejectUnauthorized: true },
    fetch,
  });
}, 30_000);
afterAll(() => {
  server?.stop(true);
  mtls?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS", () => {
  test("the CA verifies the agent; without it the connection fails; skip-verify connects", async () => {
    const address = `https://127.0.0.1:${server.port}`;
    const ca = readFileSync(pem("ca.pem"), "utf8");
    const ok = await new ApiClient({ address, tls: { ca } }).json({ method: "GET", path: "/v1/vars" });
    expect(ok.meta.index).toBe(3);
    const e = await new ApiClient({ address }).json({ method: "GET", path: "/v1/vars" }).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(0);
    const skip = await new ApiClient({ address, tls: { skipVerify: true } }).json({ method: "GET", path: "/v1/vars" });
    expect(skip.status).toBe(200);
  });

  test("mutual TLS: the client certificate is required and accepted", async () => {
    const address = `https://127.0.0.1:${mtls.port}`;
    const ca = readFileSync(pem("ca.pem"), "utf8");
    const without = await new ApiClient({ address, tls: { ca } }).json({ method: "GET", path: "/v1/vars" }).catch((x) => x);
    expect(without).toBeInstanceOf(ApiError);
    const withCert = await new ApiClient({
      address,
      tls: { ca, cert: readFileSync(pem("client.pem"), "utf8"), key: readFileSync(pem("client.key"), "utf8") },
    }).json({ method: "GET", path: "/v1/vars" });
    expect(withCert.status).toBe(200);
  });

  test("the CLI's TLS flags and their environment variables", async () => {
    const env = { EDGENODE_ADDR: `https://127.0.0.1:${mtls.port}` };
    const viaFlags = captureIo(env);
    expect(
      await runCli(
        ["var", "list", "-ca-cert", pem("ca.pem"), "-client-cert", pem("client.pem"), "-client-key", pem("client.key")],
        viaFlags,
      ),
    ).toBe(0);
    expect(viaFlags.stdout()).toBe("No variables found");
    const viaEnv = captureIo({
      ...env,
      EDGENODE_CACERT: pem("ca.pem"),
      EDGENODE_CLIENT_CERT: pem("client.pem"),
      EDGENODE_CLIENT_KEY: pem("client.key"),
    });
    expect(await runCli(["var", "list"], viaEnv)).toBe(0);
    const skip = captureIo({ EDGENODE_ADDR: `https://127.0.0.1:${server.port}`, EDGENODE_SKIP_VERIFY: "true" });
    expect(await runCli(["var", "list"], skip)).toBe(0);
    const noCa = captureIo({ EDGENODE_ADDR: `https://127.0.0.1:${server.port}` });
    expect(await runCli(["var", "list"], noCa)).toBe(1);
    expect(noCa.stderr()).toStartWith("Error listing variables: cannot reach the agent at https://127.0.0.1:");
  });
});
