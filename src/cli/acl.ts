// `node acl bootstrap`, `acl token create|list|info|self|delete`, `acl policy apply|list|info|delete`:
// ACL tokens and policies over the HTTP API, printed as Nomad's CLI prints them.
import type { ApiClient } from "../api/client.ts";
import { clientFromFlags, withClientFlags } from "./client_flags.ts";
import { bool, CliError, str, strs, type Command } from "./command.ts";
import { formatKv, formatTable } from "./table.ts";

/** A policy's rules are at most 64 KiB on the server; reading more from a file is a mistake. */
const MAX_RULES_BYTES = 64 << 10;
const ID_RE = /^[a-zA-Z0-9-]{1,64}$/;
const NAME_RE = /^[a-zA-Z0-9-]{1,128}$/;

export interface AclTokenView {
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

export interface AclPolicyView {
  Name: string;
  Description: string;
  Rules?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export function formatToken(t: AclTokenView): string {
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

export function formatPolicy(p: AclPolicyView): string {
  const head = formatKv([
    ["Name", p.Name],
    ["Description", p.Description || "<none>"],
    ["Create Index", String(p.CreateIndex)],
    ["Modify Index", String(p.ModifyIndex)],
  ]);
  return `${head}\n\nRules\n\n${(p.Rules ?? "").trimEnd()}`;
}

function argCount(args: string[], n: number, what: string, doing: string): void {
  if (args.length !== n)
    throw new CliError(`Error ${doing}: expected ${n === 1 ? "exactly one argument" : `${n} arguments`}, ${what} (got ${args.length})`);
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

export const aclBootstrapCommand: Command = {
  path: ["acl", "bootstrap"],
  synopsis: "Create the initial management token (once per cluster)",
  usage: "[options]",
  doing: "bootstrapping ACLs",
  flags: withClientFlags([jsonFlag]),
  async run(f, io) {
    argCount(f.args, 0, "none", "bootstrapping ACLs");
    const c = await clientFromFlags(f);
    const t = (await c.json<AclTokenView>({ method: "POST", path: "/v1/acl/bootstrap" })).body;
    io.out(out(bool(f, "json"), t, () => formatToken(t)));
    return 0;
  },
};

export const aclTokenCreateCommand: Command = {
  path: ["acl", "token", "create"],
  synopsis: "Create an ACL token (its secret is shown only now)",
  usage: "[options]",
  doing: "creating the token",
  flags: withClientFlags([
    { name: "name", kind: "string", arg: "NAME", help: "A human-readable name for the token." },
    { name: "type", kind: "string", arg: "TYPE", default: "client", help: 'The token type: "client" or "management".' },
    {
      name: "policy",
      kind: "strings",
      arg: "POLICY",
      help: "A policy the token carries; repeat for several (client tokens need at least one).",
    },
    jsonFlag,
  ]),
  async run(f, io) {
    argCount(f.args, 0, "none (use flags)", "creating the token");
    const type = str(f, "type") || "client";
    if (type !== "client" && type !== "management")
      throw new CliError(`Error creating the token: -type must be "client" or "management" (got "${type}")`);
    const policies = strs(f, "policy");
    for (const p of policies) checkName(p, "creating the token");
    const c = await clientFromFlags(f);
    const t = (
      await c.json<AclTokenView>({ method: "PUT", path: "/v1/acl/token", json: { Name: str(f, "name"), Type: type, Policies: policies } })
    ).body;
    io.out(out(bool(f, "json"), t, () => formatToken(t)));
    return 0;
  },
};

export const aclTokenListCommand: Command = {
  path: ["acl", "token", "list"],
  synopsis: "List ACL tokens",
  usage: "[options]",
  doing: "listing tokens",
  flags: withClientFlags([jsonFlag]),
  async run(f, io) {
    argCount(f.args, 0, "none", "listing tokens");
    const c = await clientFromFlags(f);
    const ts = (await getJson<AclTokenView[] | null>(c, "/v1/acl/tokens")) ?? [];
    if (bool(f, "json")) io.out(JSON.stringify(ts, null, 2));
    else if (ts.length === 0) io.out("No tokens found");
    else
      io.out(
        formatTable([
          ["Name", "Type", "Global", "Accessor ID", "Policies"],
          ...ts.map((t) => [t.Name || "<none>", t.Type, String(t.Global ?? false), t.AccessorID, (t.Policies ?? []).join(",")]),
        ]),
      );
    return 0;
  },
};

export const aclTokenInfoCommand: Command = {
  path: ["acl", "token", "info"],
  synopsis: "Show an ACL token by its accessor ID",
  usage: "[options] ACCESSOR_ID",
  doing: "reading the token",
  flags: withClientFlags([jsonFlag]),
  async run(f, io) {
    argCount(f.args, 1, "ACCESSOR_ID", "reading the token");
    const id = checkId(f.args[0]!, "reading the token");
    const c = await clientFromFlags(f);
    const t = await getJson<AclTokenView>(c, `/v1/acl/token/${id}`);
    io.out(out(bool(f, "json"), t, () => formatToken(t)));
    return 0;
  },
};

export const aclTokenSelfCommand: Command = {
  path: ["acl", "token", "self"],
  synopsis: "Show the token this command runs with (-token / EDGENODE_TOKEN)",
  usage: "[options]",
  doing: "reading the token",
  flags: withClientFlags([jsonFlag]),
  async run(f, io) {
    argCount(f.args, 0, "none", "reading the token");
    const c = await clientFromFlags(f);
    const t = await getJson<AclTokenView>(c, "/v1/acl/token/self");
    io.out(out(bool(f, "json"), t, () => formatToken(t)));
    return 0;
  },
};

export const aclTokenDeleteCommand: Command = {
  path: ["acl", "token", "delete"],
  synopsis: "Delete an ACL token",
  usage: "[options] ACCESSOR_ID",
  doing: "deleting the token",
  flags: withClientFlags([]),
  async run(f, io) {
    argCount(f.args, 1, "ACCESSOR_ID", "deleting the token");
    const id = checkId(f.args[0]!, "deleting the token");
    const c = await clientFromFlags(f);
    await c.json<unknown>({ method: "DELETE", path: `/v1/acl/token/${id}` });
    io.out(`Token ${id} successfully deleted`);
    return 0;
  },
};

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

export const aclPolicyApplyCommand: Command = {
  path: ["acl", "policy", "apply"],
  synopsis: "Create or update an ACL policy from a rules file",
  usage: '[options] NAME FILE   (FILE "-" reads stdin)',
  doing: "writing the policy",
  flags: withClientFlags([{ name: "description", kind: "string", arg: "TEXT", help: "A description of the policy." }]),
  async run(f, io) {
    argCount(f.args, 2, "NAME and FILE", "writing the policy");
    const name = checkName(f.args[0]!, "writing the policy");
    const rules = await readRules(f.args[1]!, stdinText);
    const c = await clientFromFlags(f);
    await c.json<unknown>({
      method: "PUT",
      path: `/v1/acl/policy/${name}`,
      json: { Name: name, Description: str(f, "description"), Rules: rules },
    });
    io.out(`Successfully wrote "${name}" ACL policy!`);
    return 0;
  },
};

export const aclPolicyListCommand: Command = {
  path: ["acl", "policy", "list"],
  synopsis: "List ACL policies",
  usage: "[options]",
  doing: "listing policies",
  flags: withClientFlags([jsonFlag]),
  async run(f, io) {
    argCount(f.args, 0, "none", "listing policies");
    const c = await clientFromFlags(f);
    const ps = (await getJson<AclPolicyView[] | null>(c, "/v1/acl/policies")) ?? [];
    if (bool(f, "json")) io.out(JSON.stringify(ps, null, 2));
    else if (ps.length === 0) io.out("No policies found");
    else io.out(formatTable([["Name", "Description"], ...ps.map((p) => [p.Name, p.Description || "<none>"])]));
    return 0;
  },
};

export const aclPolicyInfoCommand: Command = {
  path: ["acl", "policy", "info"],
  synopsis: "Show an ACL policy and its rules",
  usage: "[options] NAME",
  doing: "reading the policy",
  flags: withClientFlags([jsonFlag]),
  async run(f, io) {
    argCount(f.args, 1, "NAME", "reading the policy");
    const name = checkName(f.args[0]!, "reading the policy");
    const c = await clientFromFlags(f);
    const p = await getJson<AclPolicyView>(c, `/v1/acl/policy/${name}`);
    io.out(out(bool(f, "json"), p, () => formatPolicy(p)));
    return 0;
  },
};

export const aclPolicyDeleteCommand: Command = {
  path: ["acl", "policy", "delete"],
  synopsis: "Delete an ACL policy",
  usage: "[options] NAME",
  doing: "deleting the policy",
  flags: withClientFlags([]),
  async run(f, io) {
    argCount(f.args, 1, "NAME", "deleting the policy");
    const name = checkName(f.args[0]!, "deleting the policy");
    const c = await clientFromFlags(f);
    await c.json<unknown>({ method: "DELETE", path: `/v1/acl/policy/${name}` });
    io.out(`Successfully deleted "${name}" ACL policy!`);
    return 0;
  },
};

export const ACL_COMMANDS: Command[] = [
  aclBootstrapCommand,
  aclTokenCreateCommand,
  aclTokenListCommand,
  aclTokenInfoCommand,
  aclTokenSelfCommand,
  aclTokenDeleteCommand,
  aclPolicyApplyCommand,
  aclPolicyListCommand,
  aclPolicyInfoCommand,
  aclPolicyDeleteCommand,
];
