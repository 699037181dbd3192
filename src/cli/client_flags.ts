// The global client flags every command that talks to an agent takes (SPEC §1), each with its
// environment variable, and the ApiClient built from them.
import { ApiClient, DEFAULT_ADDRESS, type TlsOptions } from "../api/client.ts";
import { bool, CliError, str } from "./command.ts";
import type { FlagSpec, ParsedFlags } from "./flags.ts";

export const CLIENT_FLAGS: FlagSpec[] = [
  {
    name: "address",
    kind: "string",
    arg: "ADDR",
    env: "EDGENODE_ADDR",
    default: DEFAULT_ADDRESS,
    help: "The address of the edgenode agent.",
  },
  { name: "token", kind: "string", arg: "TOKEN", env: "EDGENODE_TOKEN", help: "The ACL token sent as X-Edgenode-Token." },
  {
    name: "region",
    kind: "string",
    arg: "REGION",
    env: "EDGENODE_REGION",
    help: "The region to send the request to. Default: the agent's region.",
  },
  { name: "ca-cert", kind: "string", arg: "PATH", env: "EDGENODE_CACERT", help: "PEM file of the CA that signs the agent's certificate." },
  {
    name: "client-cert",
    kind: "string",
    arg: "PATH",
    env: "EDGENODE_CLIENT_CERT",
    help: "PEM file of the client certificate for mutual TLS.",
  },
  { name: "client-key", kind: "string", arg: "PATH", env: "EDGENODE_CLIENT_KEY", help: "PEM file of the client certificate's key." },
  { name: "tls-skip-verify", kind: "bool", env: "EDGENODE_SKIP_VERIFY", help: "Do not verify the agent's TLS certificate (testing only)." },
];

/** A command's own flags followed by the client flags. */
export const withClientFlags = (own: FlagSpec[]): FlagSpec[] => [...own, ...CLIENT_FLAGS];

/** PEM files are small; anything larger is a mistake worth a clear message. */
const MAX_PEM_BYTES = 1 << 20;

async function readPem(path: string, flag: string): Promise<string> {
  const f = Bun.file(path);
  if (!(await f.exists())) throw new CliError(`Error reading -${flag}: no such file: ${path}`);
  if (f.size > MAX_PEM_BYTES) throw new CliError(`Error reading -${flag}: ${path} is larger than ${MAX_PEM_BYTES} bytes`);
  return f.text();
}

export async function clientFromFlags(f: ParsedFlags): Promise<ApiClient> {
  const tls: TlsOptions = {};
  const ca = str(f, "ca-cert");
  const cert = str(f, "client-cert");
  const key = str(f, "client-key");
  if (Boolean(cert) !== Boolean(key)) throw new CliError("Error parsing flags: -client-cert and -client-key must be given together");
  if (ca) tls.ca = await readPem(ca, "ca-cert");
  if (cert) tls.cert = await readPem(cert, "client-cert");
  if (key) tls.key = await readPem(key, "client-key");
  if (bool(f, "tls-skip-verify")) tls.skipVerify = true;
  try {
    return new ApiClient({
      address: str(f, "address") || DEFAULT_ADDRESS,
      token: str(f, "token"),
      region: str(f, "region"),
      tls: Object.keys(tls).length ? tls : undefined,
    });
  } catch (e) {
    throw new CliError(`Error parsing flags: ${(e as Error).message}`);
  }
}
