// `node tls ca create` and `node tls cert create -server|-client|-cli`: a private CA and the
// certificates mutual TLS needs, with Nomad's commands, flags and file names. The X.509 work is done
// by @peculiar/x509 over WebCrypto (EC P-256 keys, ECDSA with SHA-256); this file only decides what
// goes into each certificate and writes the files without ever replacing one.
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";
import { bool, CliError, int, str, strs, type Command } from "./command.ts";

const DEFAULT_DOMAIN = "edgenode";
const DEFAULT_REGION = "global";
const CA_DAYS = 1825;
const CERT_DAYS = 365;
const MAX_DAYS = 100 * 365;
/** A CA file or key larger than this is not a PEM file meant for us. */
const MAX_PEM_BYTES = 1 << 20;
/** Certificates start a minute in the past so that a server whose clock is a little behind accepts them. */
const BACKDATE_MS = 60_000;
const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

type ImportAlgorithm = Parameters<typeof crypto.subtle.importKey>[2];
type SignAlgorithm = X509.X509CertificateCreateParamsBase["signingAlgorithm"] & {};

/**
 * Loaded on first use: @peculiar/x509 resolves its internals with tsyringe, which needs the Reflect
 * metadata polyfill installed first. Only these two commands pay for it (and for the global it adds).
 */
async function x509lib(): Promise<typeof X509> {
  await import("reflect-metadata");
  return await import("@peculiar/x509");
}

const caFile = (domain: string) => `${domain}-agent-ca.pem`;
const caKeyFile = (domain: string) => `${domain}-agent-ca-key.pem`;

/** A positive 127-bit serial whose DER encoding is always 16 bytes (top bits 01). */
function serialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b.toString("hex");
}

/** What the config accepts as a region name. */
const REGION = /^[A-Za-z0-9_-]{1,64}$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
function dnsName(s: string, what: string, allowWildcard = false): string {
  const n = s.toLowerCase();
  const labels = n.split(".");
  const ok = n.length <= 253 && labels.every((l, i) => LABEL.test(l) || (allowWildcard && i === 0 && l === "*" && labels.length > 1));
  if (!ok) throw new CliError(`Error parsing flags: ${what} "${s}" is not a DNS name`);
  return n;
}

function days(v: number | undefined): number {
  const d = v ?? 0;
  if (d < 1 || d > MAX_DAYS) throw new CliError(`Error parsing flags: -days must be between 1 and ${MAX_DAYS}, not ${d}`);
  return d;
}

function validity(d: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + d * 86_400_000) };
}

/**
 * Writes every file or none: each is created exclusively (never replacing one that exists), keys
 * with mode 0600 and certificates 0644. If one cannot be created, those already created are removed.
 */
function writeNew(files: { path: string; text: string; mode: number }[]): void {
  for (const f of files) {
    if (exists(f.path)) throw new CliError(`Error: ${f.path} already exists; refusing to overwrite it (move it away first)`);
  }
  const made: string[] = [];
  try {
    for (const f of files) {
      const fd = openSync(f.path, "wx", f.mode);
      made.push(f.path);
      try {
        writeSync(fd, f.text);
      } finally {
        closeSync(fd);
      }
    }
  } catch (e) {
    for (const p of made) unlinkSync(p);
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EEXIST")
      throw new CliError(`Error: ${err.path ?? "a file"} already exists; refusing to overwrite it (move it away first)`);
    throw new CliError(`Error writing ${err.path ?? "the files"}: ${err.message}`);
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readPem(path: string, flag: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new CliError(`Error reading ${flag}: no such file: ${path} (create one with "node tls ca create")`);
  }
  if (size > MAX_PEM_BYTES) throw new CliError(`Error reading ${flag}: ${path} is larger than ${MAX_PEM_BYTES} bytes`);
  return readFileSync(path, "utf8");
}

async function newKeyPair(): Promise<{ keys: CryptoKeyPair; pem: string }> {
  const x509 = await x509lib();
  const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { keys, pem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/** The WebCrypto signing algorithm for a CA key of any type openssl or this command makes. */
function signingAlgorithm(k: KeyObject): { importAs: ImportAlgorithm; sign: SignAlgorithm } {
  if (k.asymmetricKeyType === "ec") {
    const curve = k.asymmetricKeyDetails?.namedCurve;
    const named = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!named) throw new CliError(`Error reading -key: EC curve ${curve ?? "?"} is not supported (P-256 or P-384)`);
    return {
      importAs: { name: "ECDSA", namedCurve: named },
      sign: { name: "ECDSA", hash: named === "P-256" ? "SHA-256" : "SHA-384" } as SignAlgorithm,
    };
  }
  if (k.asymmetricKeyType === "rsa") {
    return { importAs: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, sign: { name: "RSASSA-PKCS1-v1_5" } };
  }
  throw new CliError(`Error reading -key: ${k.asymmetricKeyType ?? "this"} key type is not supported (EC or RSA)`);
}

async function loadCa(certPath: string, keyPath: string): Promise<{ cert: X509.X509Certificate; key: CryptoKey; sign: SignAlgorithm }> {
  const x509 = await x509lib();
  let cert: X509.X509Certificate;
  try {
    cert = new x509.X509Certificate(readPem(certPath, "-ca"));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`Error reading -ca: ${certPath} is not a PEM certificate: ${(e as Error).message}`);
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new CliError(`Error reading -ca: ${certPath} is not a CA certificate (no basicConstraints CA:TRUE)`);
  if (cert.notAfter.getTime() <= Date.now()) throw new CliError(`Error reading -ca: ${certPath} expired on ${cert.notAfter.toISOString()}`);
  let k: KeyObject;
  try {
    k = createPrivateKey(readPem(keyPath, "-key"));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`Error reading -key: ${keyPath} is not a PEM private key: ${(e as Error).message}`);
  }
  const pub = createPublicKey(k).export({ type: "spki", format: "der" });
  if (!Buffer.from(cert.publicKey.rawData).equals(pub))
    throw new CliError(`Error: the key ${keyPath} does not belong to the CA certificate ${certPath}`);
  const alg = signingAlgorithm(k);
  const der = k.export({ type: "pkcs8", format: "der" });
  const key = await crypto.subtle.importKey("pkcs8", der, alg.importAs, false, ["sign"]);
  return { cert, key, sign: alg.sign };
}

/** The issuer's own key identifier when it has one (a CA made elsewhere may compute it differently), else one from its key. */
async function authorityKeyId(x509: typeof X509, ca: X509.X509Certificate): Promise<X509.AuthorityKeyIdentifierExtension> {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
}

export const tlsCaCreateCommand: Command = {
  path: ["tls", "ca", "create"],
  synopsis: "Create a certificate authority for mutual TLS",
  usage: "[options]",
  doing: "creating the CA",
  flags: [
    { name: "days", kind: "int", default: CA_DAYS, help: "Days the CA certificate is valid for." },
    {
      name: "domain",
      kind: "string",
      default: DEFAULT_DOMAIN,
      help: "Domain of the cluster; names the files <domain>-agent-ca.pem and <domain>-agent-ca-key.pem.",
    },
    { name: "common-name", kind: "string", arg: "NAME", help: 'Common name of the CA. Default: "<domain> agent CA <serial>".' },
  ],
  async run(f, io) {
    if (f.args.length > 0) throw new CliError(`Error creating the CA: unexpected arguments: ${f.args.join(" ")}`);
    const domain = dnsName(str(f, "domain"), "-domain");
    const d = days(int(f, "days"));
    const certPath = caFile(domain);
    const keyPath = caKeyFile(domain);
    for (const p of [certPath, keyPath])
      if (exists(p)) throw new CliError(`Error: ${p} already exists; refusing to overwrite it (move it away first)`);
    const x509 = await x509lib();
    const { keys, pem } = await newKeyPair();
    const serial = serialHex();
    const cn = str(f, "common-name") || `${domain} agent CA ${serial.slice(0, 16)}`;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial,
      name: [{ CN: [cn] }],
      ...validity(d),
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } as SignAlgorithm,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeNew([
      { path: certPath, text: `${cert.toString("pem")}\n`, mode: 0o644 },
      { path: keyPath, text: `${pem}\n`, mode: 0o600 },
    ]);
    io.out(`==> CA certificate saved to: ${certPath}\n==> CA certificate key saved to: ${keyPath}`);
    return 0;
  },
};

type Kind = "server" | "client" | "cli";

export const tlsCertCreateCommand: Command = {
  path: ["tls", "cert", "create"],
  synopsis: "Create a server, client or CLI certificate signed by the CA",
  usage: "-server|-client|-cli [options]",
  doing: "creating the certificate",
  flags: [
    {
      name: "server",
      kind: "bool",
      help: "A server certificate: server.<region>.<domain>, localhost and 127.0.0.1, for serverAuth and clientAuth.",
    },
    {
      name: "client",
      kind: "bool",
      help: "A client certificate: client.<region>.<domain>, for clientAuth (an API client using mutual TLS).",
    },
    { name: "cli", kind: "bool", help: "A CLI certificate: cli.<region>.<domain>, for clientAuth." },
    {
      name: "region",
      kind: "string",
      arg: "REGION",
      default: DEFAULT_REGION,
      help: "Region of the server or client the certificate names.",
    },
    { name: "domain", kind: "string", default: DEFAULT_DOMAIN, help: "Domain of the cluster; must match the CA's -domain." },
    { name: "days", kind: "int", default: CERT_DAYS, help: "Days the certificate is valid for." },
    { name: "ca", kind: "string", arg: "PATH", help: "The CA certificate. Default: <domain>-agent-ca.pem." },
    { name: "key", kind: "string", arg: "PATH", help: "The CA's key. Default: <domain>-agent-ca-key.pem." },
    { name: "additional-dnsname", kind: "strings", arg: "NAME", help: "Another DNS name the certificate is valid for (repeatable)." },
    { name: "additional-ipaddress", kind: "strings", arg: "IP", help: "Another IP address the certificate is valid for (repeatable)." },
  ],
  async run(f, io) {
    if (f.args.length > 0) throw new CliError(`Error creating the certificate: unexpected arguments: ${f.args.join(" ")}`);
    const kinds = (["server", "client", "cli"] as const).filter((k) => bool(f, k));
    if (kinds.length !== 1)
      throw new CliError(`Error: ${kinds.length === 0 ? "provide one of" : "provide only one of"} -server, -client or -cli`);
    const kind: Kind = kinds[0]!;
    const domain = dnsName(str(f, "domain"), "-domain");
    const region = str(f, "region");
    if (!REGION.test(region)) throw new CliError(`Error parsing flags: -region "${region}" must be 1 to 64 letters, digits, "-" or "_"`);
    const d = days(int(f, "days"));
    // DNS names compare without case; the file names keep the region as the operator wrote it.
    const name = `${kind}.${region.toLowerCase()}.${domain}`;
    const dns = [
      name,
      ...(kind === "server" ? ["localhost"] : []),
      ...strs(f, "additional-dnsname").map((n) => dnsName(n, "-additional-dnsname", true)),
    ];
    const ips = [...(kind === "server" ? ["127.0.0.1"] : []), ...strs(f, "additional-ipaddress")];
    for (const ip of ips) if (!isIP(ip)) throw new CliError(`Error parsing flags: -additional-ipaddress "${ip}" is not an IP address`);
    const base = `${region}-${kind}-${domain}`;
    const certPath = `${base}.pem`;
    const keyPath = `${base}-key.pem`;
    for (const p of [certPath, keyPath])
      if (exists(p)) throw new CliError(`Error: ${p} already exists; refusing to overwrite it (move it away first)`);
    const caPath = str(f, "ca") || caFile(domain);
    const caKeyPath = str(f, "key") || caKeyFile(domain);
    const ca = await loadCa(caPath, caKeyPath);
    const x509 = await x509lib();
    const { keys, pem } = await newKeyPair();
    // Nomad's usages: servers both accept and dial peers; a client or the CLI only dials.
    const usages =
      kind === "server" ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth];
    const names: X509.JsonGeneralName[] = [
      ...[...new Set(dns)].map((value) => ({ type: "dns" as const, value })),
      ...[...new Set(ips)].map((value) => ({ type: "ip" as const, value })),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialHex(),
      subject: [{ CN: [name] }],
      issuer: ca.cert.subjectName,
      ...validity(d),
      publicKey: keys.publicKey,
      signingKey: ca.key,
      signingAlgorithm: ca.sign,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(usages),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await authorityKeyId(x509, ca.cert),
      ],
    });
    if (cert.notAfter > ca.cert.notAfter)
      io.err(`Warning: the certificate outlives the CA, which expires on ${ca.cert.notAfter.toISOString()}`);
    writeNew([
      { path: certPath, text: `${cert.toString("pem")}\n`, mode: 0o644 },
      { path: keyPath, text: `${pem}\n`, mode: 0o600 },
    ]);
    const title = kind === "server" ? "Server" : kind === "client" ? "Client" : "CLI";
    io.out(
      `==> Using CA file ${caPath} and CA key ${caKeyPath}\n==> ${title} Certificate saved to ${certPath}\n==> ${title} Certificate key saved to ${keyPath}`,
    );
    return 0;
  },
};

export const TLS_COMMANDS: Command[] = [tlsCaCreateCommand, tlsCertCreateCommand];
