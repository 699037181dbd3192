// `node acl bootstrap`, `acl token create|list|info|self|delete`, `acl policy apply|list|info|delete`:
// ACL tokens and policies over the HTTP API, printed as Nomad's CLI prints them.
import type { ApiClient } from "../api/client.ts";
import { bool, CliError, str, strs, type Command } from "./command.ts";
import { simpleCommand } from "./simple_command.ts";
import { formatKv, formatTable } from "./table.ts";

/** A policy's rules are at most 64 KiB on the server; reading more from a file is a mistake. */
const MAX_RULES_BYTES = 64 << 10;
const ID_RE = /^[a-zA-Z0-9-]{1,64}$/;
const NAME_RE = /^[a-zA-Z0-9-]{1,128}$/;

interface AclTokenView {
  AccessorID: string;
  SecretID?: string;
  Name: string;
  Type: string;
  Policies: string[] | null;
  Global?: boolean;
  CreateTime?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

interface AclPolicyView {
  Name: string;
  Description: string;
  Rules?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

function formatToken(t: AclTokenView): string {
  const pairs: [string, string][] = [
    ["Accessor ID", t.AccessorID],
    // Only present in the answer to bootstrap and create: the one time the secret is shown.
    ["Secret ID", t.SecretID ?? "<hidden>"],
    ["Name", t.Name || "<none>"],
    ["Type", t.Type],
    ["Global", String(t.Global ?? false)],
    ["Create Time", t.CreateTime ?? ""],
    ["Create Index", String(t.CreateIndex)],
    ["Modify Index", String(t.ModifyIndex)],
    ["Policies", t.Type === "management" ? "n/a" : (t.Policies ?? []).join(", ")],
  ];
  return formatKv(pairs);
}

function formatPolicy(p: AclPolicyView): string {
  const head = formatKv([
    ["Name", p.Name],
    ["Description", p.Description || "<none>"],
    ["Create Index", String(p.CreateIndex)],
    ["Modify Index", String(p.ModifyIndex)],
  ]);
  return `${head}\n\nRules\n\n${(p.Rules ?? "").trimEnd()}`;
}

function checkId(id: string, doing: string): string {
  if (!ID_RE.test(id)) throw new CliError(`Error ${doing}: invalid accessor ID "${id}"`);
  return id;
}

function checkName(name: string, doing: string): string {
  if (!NAME_RE.test(name)) throw new CliError(`Error ${doing}: invalid policy name "${name}": 1-128 letters, digits and -`);
  return name;
}

async function getJson<T>(c: ApiClient, path: string): Promise<T> {
  return (await c.json<T>({ method: "GET", path })).body;
}

const jsonFlag = { name: "json", kind: "bool" as const, help: "Print JSON instead of text." };
const out = (json: boolean, v: unknown, text: () => string) => (json ? JSON.stringify(v, null, 2) : text());

/** What `list`, `info` and `delete` need to know of tokens and of policies: the commands are the same otherwise. */
interface AclKind<V> {
  /** "token" or "policy": the second word of the command path. */
  noun: string;
  plural: string;
  /** The positional argument naming one, and its check. */
  key: string;
  check(key: string, doing: string): string;
  infoSynopsis: string;
  one(key: string): string;
  all: string;
  format(v: V): string;
  header: string[];
  row(v: V): string[];
  deleted(key: string): string;
}

const TOKENS: AclKind<AclTokenView> = {
  noun: "token",
  plural: "tokens",
  key: "ACCESSOR_ID",
  check: checkId,
  infoSynopsis: "Show an ACL token by its accessor ID",
  one: (id) => `/v1/acl/token/${id}`,
  all: "/v1/acl/tokens",
  format: formatToken,
  header: ["Name", "Type", "Global", "Accessor ID", "Policies"],
  row: (t) => [t.Name || "<none>", t.Type, String(t.Global ?? false), t.AccessorID, (t.Policies ?? []).join(",")],
  deleted: (id) => `Token ${id} successfully deleted`,
};

const POLICIES: AclKind<AclPolicyView> = {
  noun: "policy",
  plural: "policies",
  key: "NAME",
  check: checkName,
  infoSynopsis: "Show an ACL policy and its rules",
  one: (name) => `/v1/acl/policy/${name}`,
  all: "/v1/acl/policies",
  format: formatPolicy,
  header: ["Name", "Description"],
  row: (p) => [p.Name, p.Description || "<none>"],
  deleted: (name) => `Successfully deleted "${name}" ACL policy!`,
};

function listCommand<V>(k: AclKind<V>): Command {
  return simpleCommand({
    path: ["acl", k.noun, "list"],
    synopsis: `List ACL ${k.plural}`,
    usage: "[options]",
    doing: `listing ${k.plural}`,
    flags: [jsonFlag],
    args: { exactly: 0, what: "none" },
    async run(f, _, client) {
      const vs = (await getJson<V[] | null>(await client(), k.all)) ?? [];
      if (bool(f, "json")) return JSON.stringify(vs, null, 2);
      return vs.length === 0 ? `No ${k.plural} found` : formatTable([k.header, ...vs.map(k.row)]);
    },
  });
}

function infoCommand<V>(k: AclKind<V>): Command {
  const doing = `reading the ${k.noun}`;
  return simpleCommand({
    path: ["acl", k.noun, "info"],
    synopsis: k.infoSynopsis,
    usage: `[options] ${k.key}`,
    doing,
    flags: [jsonFlag],
    args: { exactly: 1, what: k.key },
    check: (f) => k.check(f.args[0]!, doing),
    async run(f, key, client) {
      const v = await getJson<V>(await client(), k.one(key));
      return out(bool(f, "json"), v, () => k.format(v));
    },
  });
}

function deleteCommand<V>(k: AclKind<V>): Command {
  const doing = `deleting the ${k.noun}`;
  return simpleCommand({
    path: ["acl", k.noun, "delete"],
    synopsis: `Delete an ACL ${k.noun}`,
    usage: `[options] ${k.key}`,
    doing,
    args: { exactly: 1, what: k.key },
    check: (f) => k.check(f.args[0]!, doing),
    async run(_, key, client) {
      await (await client()).json<unknown>({ method: "DELETE", path: k.one(key) });
      return k.deleted(key);
    },
  });
}

const aclBootstrapCommand = simpleCommand({
  path: ["acl", "bootstrap"],
  synopsis: "Create the initial management token (once per cluster)",
  usage: "[options]",
  doing: "bootstrapping ACLs",
  flags: [jsonFlag],
  args: { exactly: 0, what: "none" },
  async run(f, _, client) {
    const t = (await (await client()).json<AclTokenView>({ method: "POST", path: "/v1/acl/bootstrap" })).body;
    return out(bool(f, "json"), t, () => formatToken(t));
  },
});

const aclTokenCreateCommand = simpleCommand({
  path: ["acl", "token", "create"],
  synopsis: "Create an ACL token (its secret is shown only now)",
  usage: "[options]",
  doing: "creating the token",
  flags: [
    { name: "name", kind: "string", arg: "NAME", help: "A human-readable name for the token." },
    { name: "type", kind: "string", arg: "TYPE", default: "client", help: 'The token type: "client" or "management".' },
    {
      name: "policy",
      kind: "strings",
      arg: "POLICY",
      help: "A policy the token carries; repeat for several (client tokens need at least one).",
    },
    jsonFlag,
  ],
  args: { exactly: 0, what: "none (use flags)" },
  check(f) {
    const type = str(f, "type") || "client";
    if (type !== "client" && type !== "management")
      throw new CliError(`Error creating the token: -type must be "client" or "management" (got "${type}")`);
    const policies = strs(f, "policy");
    for (const p of policies) checkName(p, "creating the token");
    return { type, policies };
  },
  async run(f, { type, policies }, client) {
    const json = { Name: str(f, "name"), Type: type, Policies: policies };
    const t = (await (await client()).json<AclTokenView>({ method: "PUT", path: "/v1/acl/token", json })).body;
    return out(bool(f, "json"), t, () => formatToken(t));
  },
});

const aclTokenSelfCommand = simpleCommand({
  path: ["acl", "token", "self"],
  synopsis: "Show the token this command runs with (-token / EDGENODE_TOKEN)",
  usage: "[options]",
  doing: "reading the token",
  flags: [jsonFlag],
  args: { exactly: 0, what: "none" },
  async run(f, _, client) {
    const t = await getJson<AclTokenView>(await client(), "/v1/acl/token/self");
    return out(bool(f, "json"), t, () => formatToken(t));
  },
});

async function readRules(file: string, readStdin: () => Promise<string>): Promise<string> {
  let text: string;
  if (file === "-") {
    text = await readStdin();
  } else {
    const fh = Bun.file(file);
    if (!(await fh.exists())) throw new CliError(`Error writing the policy: no such file: ${file}`);
    if (fh.size > MAX_RULES_BYTES) throw new CliError(`Error writing the policy: ${file} is larger than ${MAX_RULES_BYTES} bytes`);
    text = await fh.text();
  }
  if (Buffer.byteLength(text) > MAX_RULES_BYTES)
    throw new CliError(`Error writing the policy: the rules are larger than ${MAX_RULES_BYTES} bytes`);
  return text;
}

async function stdinText(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of Bun.stdin.stream()) {
    total += c.byteLength;
    if (total > MAX_RULES_BYTES)
      throw new CliError(`Error writing the policy: the rules on stdin are larger than ${MAX_RULES_BYTES} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const aclPolicyApplyCommand = simpleCommand({
  path: ["acl", "policy", "apply"],
  synopsis: "Create or update an ACL policy from a rules file",
  usage: '[options] NAME FILE   (FILE "-" reads stdin)',
  doing: "writing the policy",
  flags: [{ name: "description", kind: "string", arg: "TEXT", help: "A description of the policy." }],
  args: { exactly: 2, what: "NAME and FILE" },
  async check(f) {
    const name = checkName(f.args[0]!, "writing the policy");
    return { name, rules: await readRules(f.args[1]!, stdinText) };
  },
  async run(f, { name, rules }, client) {
    await (await client()).json<unknown>({
      method: "PUT",
      path: `/v1/acl/policy/${name}`,
      json: { Name: name, Description: str(f, "description"), Rules: rules },
    });
    return `Successfully wrote "${name}" ACL policy!`;
  },
});

export const ACL_COMMANDS: Command[] = [
  aclBootstrapCommand,
  aclTokenCreateCommand,
  listCommand(TOKENS),
  infoCommand(TOKENS),
  aclTokenSelfCommand,
  deleteCommand(TOKENS),
  aclPolicyApplyCommand,
  listCommand(POLICIES),
  infoCommand(POLICIES),
  deleteCommand(POLICIES),
];
