// `node tls ca create` and `node tls cert create` as real processes: the files they write (Nomad's
// names, key modes), what openssl reads in them (SANs, usages, validity, the chain), their refusals
// (an existing file, a key of another CA, a certificate that is not a CA), and a client certificate
// that the CLI presents to an HTTPS server which requires one.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireTool } from "../support/tools.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const root = mkdtempSync(join(tmpdir(), "edgenode-tls-cmd-"));
let dirs = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh empty directory to run the commands in (they write to the working directory, as Nomad's do). */
function freshDir(): string {
  const d = join(root, `d${++dirs}`);
  mkdirSync(d);
  return d;
}

function node(cwd: string, ...args: string[]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync([process.execPath, MAIN, ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

function ok(cwd: string, ...args: string[]): string {
  const r = node(cwd, ...args);
  if (r.code !== 0) throw new Error(`node ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return r.out;
}

function openssl(...args: string[]): { code: number; out: string } {
  requireTool("openssl", "openssl");
  const p = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

const text = (file: string) => openssl("x509", "-in", file, "-noout", "-text").out;
const mode = (file: string) => statSync(file).mode & 0o777;

/** The line after `heading` in `openssl x509 -text`, trimmed. */
function field(certText: string, heading: string): string {
  const lines = certText.split("\n");
  const i = lines.findIndex((l) => l.includes(heading));
  return i < 0 ? "" : (lines[i + 1] ?? "").trim();
}

/** Days from now to the certificate's notAfter. */
function daysLeft(file: string): number {
  const end = openssl("x509", "-in", file, "-noout", "-enddate")
    .out.trim()
    .replace(/^notAfter=/, "");
  return (Date.parse(end) - Date.now()) / 86_400_000;
}

describe("node tls ca create", () => {
  test("writes edgenode-agent-ca.pem (0644) and edgenode-agent-ca-key.pem (0600): a self-signed CA for 1825 days", () => {
    const d = freshDir();
    const out = ok(d, "tls", "ca", "create");
    expect(out).toContain("edgenode-agent-ca.pem");
    expect(readdirSync(d).sort()).toEqual(["edgenode-agent-ca-key.pem", "edgenode-agent-ca.pem"]);
    expect(mode(join(d, "edgenode-agent-ca-key.pem"))).toBe(0o600);
    expect(mode(join(d, "edgenode-agent-ca.pem"))).toBe(0o644);
    const t = text(join(d, "edgenode-agent-ca.pem"));
    expect(field(t, "Basic Constraints")).toBe("CA:TRUE");
    expect(t).toMatch(/Basic Constraints: critical/);
    expect(field(t, "Key Usage")).toBe("Digital Signature, Certificate Sign, CRL Sign");
    expect(t).toContain("ASN1 OID: prime256v1");
    expect(t).toMatch(/Subject: CN\s*=\s*edgenode agent CA [0-9a-f]{16}/);
    expect(daysLeft(join(d, "edgenode-agent-ca.pem"))).toBeCloseTo(1825, 0);
    // Self-signed: it verifies against itself, and the key file is the CA's key.
    expect(openssl("verify", "-CAfile", join(d, "edgenode-agent-ca.pem"), join(d, "edgenode-agent-ca.pem")).code).toBe(0);
    const certPub = openssl("x509", "-in", join(d, "edgenode-agent-ca.pem"), "-noout", "-pubkey").out;
    const keyPub = openssl("pkey", "-in", join(d, "edgenode-agent-ca-key.pem"), "-pubout").out;
    expect(keyPub).toBe(certPub);
  });

  test("-domain names the files and -days the lifetime; a second run refuses to overwrite and leaves the files as they were", () => {
    const d = freshDir();
    ok(d, "tls", "ca", "create", "-domain", "acme", "-days", "30", "-common-name", "Acme Root");
    expect(readdirSync(d).sort()).toEqual(["acme-agent-ca-key.pem", "acme-agent-ca.pem"]);
    expect(daysLeft(join(d, "acme-agent-ca.pem"))).toBeCloseTo(30, 0);
    expect(text(join(d, "acme-agent-ca.pem"))).toMatch(/Subject: CN\s*=\s*Acme Root/);
    const before = readFileSync(join(d, "acme-agent-ca-key.pem"), "utf8");
    const again = node(d, "tls", "ca", "create", "-domain", "acme");
    expect(again.code).toBe(1);
    expect(again.err).toContain("acme-agent-ca.pem already exists");
    expect(again.out).toBe("");
    expect(readFileSync(join(d, "acme-agent-ca-key.pem"), "utf8")).toBe(before);
    // Only the key left behind is still enough to refuse: nothing half-written.
    rmSync(join(d, "acme-agent-ca.pem"));
    const keyOnly = node(d, "tls", "ca", "create", "-domain", "acme");
    expect(keyOnly.code).toBe(1);
    expect(keyOnly.err).toContain("acme-agent-ca-key.pem already exists");
    expect(readdirSync(d)).toEqual(["acme-agent-ca-key.pem"]);
  });

  test("bad -days and -domain are refused", () => {
    const d = freshDir();
    expect(node(d, "tls", "ca", "create", "-days", "0").err).toContain("-days must be between 1");
    expect(node(d, "tls", "ca", "create", "-domain", "a b").err).toContain("is not a DNS name");
    expect(readdirSync(d)).toEqual([]);
  });
});

describe("node tls cert create", () => {
  test("-server: <region>-server-edgenode.pem naming server.<region>.edgenode, localhost and 127.0.0.1, for serverAuth and clientAuth", () => {
    const d = freshDir();
    ok(d, "tls", "ca", "create");
    const out = ok(
      d,
      "tls",
      "cert",
      "create",
      "-server",
      "-region",
      "east",
      "-additional-dnsname",
      "edge1.example.com",
      "-additional-ipaddress",
      "10.1.2.3",
      "-additional-ipaddress",
      "::1",
    );
    expect(out).toContain("Server Certificate saved to east-server-edgenode.pem");
    expect(readdirSync(d).sort()).toEqual([
      "east-server-edgenode-key.pem",
      "east-server-edgenode.pem",
      "edgenode-agent-ca-key.pem",
      "edgenode-agent-ca.pem",
    ]);
    expect(mode(join(d, "east-server-edgenode-key.pem"))).toBe(0o600);
    expect(mode(join(d, "east-server-edgenode.pem"))).toBe(0o644);
    const t = text(join(d, "east-server-edgenode.pem"));
    expect(t).toMatch(/Subject: CN\s*=\s*server\.east\.edgenode/);
    expect(field(t, "Subject Alternative Name")).toBe(
      "DNS:server.east.edgenode, DNS:localhost, DNS:edge1.example.com, IP Address:127.0.0.1, IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1",
    );
    expect(field(t, "Extended Key Usage")).toBe("TLS Web Server Authentication, TLS Web Client Authentication");
    expect(field(t, "Key Usage")).toBe("Digital Signature, Key Encipherment");
    expect(field(t, "Basic Constraints")).toBe("CA:FALSE");
    expect(daysLeft(join(d, "east-server-edgenode.pem"))).toBeCloseTo(365, 0);
    // The chain and both purposes verify with openssl; the authority key id is the CA's subject key id.
    const ca = join(d, "edgenode-agent-ca.pem");
    const cert = join(d, "east-server-edgenode.pem");
    expect(openssl("verify", "-CAfile", ca, "-purpose", "sslserver", cert).out).toContain(": OK");
    expect(openssl("verify", "-CAfile", ca, "-purpose", "sslclient", cert).out).toContain(": OK");
    expect(field(t, "Authority Key Identifier").replace(/^keyid:/, "")).toBe(field(text(ca), "Subject Key Identifier"));
    // Certificate and key belong together.
    expect(openssl("pkey", "-in", join(d, "east-server-edgenode-key.pem"), "-pubout").out).toBe(
      openssl("x509", "-in", cert, "-noout", "-pubkey").out,
    );
    // Any region the config accepts; its DNS name is lower case.
    ok(d, "tls", "cert", "create", "-server", "-region", "US_East");
    expect(field(text(join(d, "US_East-server-edgenode.pem")), "Subject Alternative Name")).toStartWith("DNS:server.us_east.edgenode, ");
    // The default region is global.
    ok(d, "tls", "cert", "create", "-server");
    expect(text(join(d, "global-server-edgenode.pem"))).toContain("DNS:server.global.edgenode");
  });

  test("-client and -cli: client.<region>.edgenode and cli.<region>.edgenode for clientAuth only, which openssl refuses as a server", () => {
    const d = freshDir();
    ok(d, "tls", "ca", "create");
    const ca = join(d, "edgenode-agent-ca.pem");
    expect(ok(d, "tls", "cert", "create", "-client")).toContain("Client Certificate saved to global-client-edgenode.pem");
    expect(ok(d, "tls", "cert", "create", "-cli", "-region", "west")).toContain("CLI Certificate saved to west-cli-edgenode.pem");
    for (const [file, name] of [
      ["global-client-edgenode.pem", "client.global.edgenode"],
      ["west-cli-edgenode.pem", "cli.west.edgenode"],
    ] as const) {
      const cert = join(d, file);
      const t = text(cert);
      expect(field(t, "Subject Alternative Name")).toBe(`DNS:${name}`);
      expect(field(t, "Extended Key Usage")).toBe("TLS Web Client Authentication");
      expect(mode(join(d, file.replace(".pem", "-key.pem")))).toBe(0o600);
      expect(openssl("verify", "-CAfile", ca, "-purpose", "sslclient", cert).out).toContain(": OK");
      const asServer = openssl("verify", "-CAfile", ca, "-purpose", "sslserver", cert);
      expect(asServer.code).not.toBe(0);
      expect(asServer.out).toContain("unsuitable certificate purpose");
    }
  });

  test("-ca and -key pick the CA files (also an openssl-made CA with a SEC1 key); -domain picks the default ones", () => {
    const d = freshDir();
    const pki = freshDir();
    ok(pki, "tls", "ca", "create", "-domain", "acme");
    const r = node(
      d,
      "tls",
      "cert",
      "create",
      "-server",
      "-ca",
      join(pki, "acme-agent-ca.pem"),
      "-key",
      join(pki, "acme-agent-ca-key.pem"),
    );
    expect(r.code).toBe(0);
    expect(openssl("verify", "-CAfile", join(pki, "acme-agent-ca.pem"), join(d, "global-server-edgenode.pem")).code).toBe(0);
    // With -domain the defaults are <domain>-agent-ca*.pem in the working directory and the names use the domain.
    ok(pki, "tls", "cert", "create", "-server", "-domain", "acme");
    expect(text(join(pki, "global-server-acme.pem"))).toContain("DNS:server.global.acme");
    // A CA made by openssl, its key in SEC1 ("EC PRIVATE KEY") form.
    const o = freshDir();
    expect(openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", join(o, "ca.key")).code).toBe(0);
    expect(
      openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        join(o, "ca.key"),
        "-sha256",
        "-days",
        "2",
        "-subj",
        "/CN=openssl CA",
        "-out",
        join(o, "ca.pem"),
      ).code,
    ).toBe(0);
    const w = node(o, "tls", "cert", "create", "-client", "-ca", "ca.pem", "-key", "ca.key");
    expect(w.code).toBe(0);
    // The certificate would outlive this 2-day CA: said, not refused.
    expect(w.err).toContain("outlives the CA");
    expect(openssl("verify", "-CAfile", join(o, "ca.pem"), join(o, "global-client-edgenode.pem")).code).toBe(0);
  });

  test("refusals: an existing file, no or two kinds, a missing CA, a key of another CA, a CA file that is not a CA", () => {
    const d = freshDir();
    ok(d, "tls", "ca", "create");
    const other = freshDir();
    ok(other, "tls", "ca", "create");
    ok(d, "tls", "cert", "create", "-server");
    const keyBefore = readFileSync(join(d, "global-server-edgenode-key.pem"), "utf8");
    const again = node(d, "tls", "cert", "create", "-server");
    expect(again.code).toBe(1);
    expect(again.err).toContain("global-server-edgenode.pem already exists; refusing to overwrite it");
    expect(readFileSync(join(d, "global-server-edgenode-key.pem"), "utf8")).toBe(keyBefore);
    // A leftover key alone also refuses, and no certificate is written beside it.
    rmSync(join(d, "global-server-edgenode.pem"));
    expect(node(d, "tls", "cert", "create", "-server").err).toContain("global-server-edgenode-key.pem already exists");
    expect(readdirSync(d)).not.toContain("global-server-edgenode.pem");

    const e = freshDir();
    const refuse = (args: string[], msg: string) => {
      const r = node(e, "tls", "cert", "create", ...args);
      expect(`${r.code} ${r.err}`).toContain(msg);
      expect(r.code).toBe(1);
      expect(readdirSync(e).filter((f) => f.includes("-server-") || f.includes("-client-"))).toEqual([]);
    };
    refuse([], "provide one of -server, -client or -cli");
    refuse(["-server", "-client"], "provide only one of -server, -client or -cli");
    refuse(["-server"], "no such file: edgenode-agent-ca.pem");
    refuse(["-server", "-region", "a.b"], '-region "a.b" must be 1 to 64 letters');
    refuse(["-server", "-additional-ipaddress", "10.0.0"], '"10.0.0" is not an IP address');
    refuse(
      ["-server", "-ca", join(d, "edgenode-agent-ca.pem"), "-key", join(other, "edgenode-agent-ca-key.pem")],
      "does not belong to the CA certificate",
    );
    refuse(
      ["-server", "-ca", join(d, "global-server-edgenode-key.pem"), "-key", join(d, "edgenode-agent-ca-key.pem")],
      "is not a PEM certificate",
    );
    ok(other, "tls", "cert", "create", "-client");
    refuse(
      ["-server", "-ca", join(other, "global-client-edgenode.pem"), "-key", join(other, "global-client-edgenode-key.pem")],
      "is not a CA certificate",
    );
  });

  test("the CLI presents a -client certificate to an HTTPS server that requires one, made by -server; without it, or from another CA, it is refused", async () => {
    const d = freshDir();
    ok(d, "tls", "ca", "create");
    ok(d, "tls", "cert", "create", "-server");
    ok(d, "tls", "cert", "create", "-client");
    const other = freshDir();
    ok(other, "tls", "ca", "create");
    ok(other, "tls", "cert", "create", "-client");
    const ca = readFileSync(join(d, "edgenode-agent-ca.pem"), "utf8");
    let served = 0;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      tls: {
        cert: readFileSync(join(d, "global-server-edgenode.pem"), "utf8"),
        key: readFileSync(join(d, "global-server-edgenode-key.pem"), "utf8"),
        ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      fetch(req) {
        served++;
        const path = new URL(req.url).pathname.slice("/v1/var/".length);
        return Response.json({ Path: path, Items: { via: "mtls" }, CreateIndex: 1, ModifyIndex: 1, CreateTime: 0, ModifyTime: 0 });
      },
    });
    // Spawned without blocking: the server above answers from this process's event loop.
    const get = async (...tlsArgs: string[]) => {
      const p = Bun.spawn(
        [
          process.execPath,
          MAIN,
          "var",
          "get",
          "-json",
          "-address",
          `https://localhost:${server.port}`,
          "-ca-cert",
          join(d, "edgenode-agent-ca.pem"),
          ...tlsArgs,
          "app/x",
        ],
        { cwd: d, stdout: "pipe", stderr: "pipe" },
      );
      const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
      return { code, out, err };
    };
    try {
      const good = await get(
        "-client-cert",
        join(d, "global-client-edgenode.pem"),
        "-client-key",
        join(d, "global-client-edgenode-key.pem"),
      );
      expect(`${good.code} ${good.err}`).toBe("0 ");
      expect(JSON.parse(good.out)).toMatchObject({ Path: "app/x", Items: { via: "mtls" } });
      expect(served).toBe(1);
      const none = await get();
      expect(none.code).toBe(1);
      expect(none.err).toContain("TLS handshake failed");
      const foreign = await get(
        "-client-cert",
        join(other, "global-client-edgenode.pem"),
        "-client-key",
        join(other, "global-client-edgenode-key.pem"),
      );
      expect(foreign.code).toBe(1);
      expect(served).toBe(1);
    } finally {
      server.stop(true);
    }
  }, 30_000);
});
