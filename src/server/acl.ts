// ACLs on the server: resolving a secret to its token (by SHA-256, compared in constant
// time), the authorize hook the server runs where a call executes, and the ACL.* endpoints
// (bootstrap, tokens, policies). The leader generates IDs, secrets and times before proposing.
import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { EdgeError, permissionDenied } from "../lib/errors.ts";
import type { AclPolicy, AclToken } from "../state/tables.ts";
import { LIMITS } from "../state/tables.ts";
import type { StateStore } from "../state/state_store.ts";
import { AclCatchUp, type CatchUpRaft } from "./acl_catch_up.ts";
import { parsePolicyRules, PolicySet, type ParsedPolicy, type VarOp } from "./acl_policy.ts";
import { emptyReply, endpoint, type Endpoint, type EndpointContext } from "./endpoints.ts";

/** Longest secret we hash; anything longer is simply unknown. */
export const MAX_SECRET_CHARS = 256;
const POLICY_CACHE_MAX = 512;
const BOOTSTRAP_TOKEN_NAME = "Bootstrap Token";

/** What the ACL module needs from the server. */
export interface AclHost {
  readonly cfg: { acl: { enabled: boolean } };
  readonly state: StateStore;
  readonly driver: CatchUpRaft | undefined;
  authorize: ((method: string, args: Record<string, unknown>, token: string | undefined) => void | Promise<void>) | undefined;
  addEndpoints(eps: Record<string, Endpoint>): void;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** A resolved token: management, or a client with its merged policies. */
export type Identity = { token: AclToken; management: true } | { token: AclToken; management: false; policies: PolicySet };

/** Methods anyone may call, even without a token. Cluster.* is internal server-to-server traffic. */
function isPublic(method: string): boolean {
  return method.startsWith("Status.") || method.startsWith("Cluster.") || method === "ACL.Bootstrap";
}

const VAR_OPS: Record<string, VarOp> = {
  "Var.Get": "read",
  "Var.Put": "write",
  "Var.LockAcquire": "write",
  "Var.LockRenew": "write",
  "Var.LockRelease": "write",
  "Var.Delete": "destroy",
};

export class Acl {
  /** Parsed rules by their text: policies change rarely, requests are many. */
  private readonly parsed = new Map<string, ParsedPolicy>();
  /** Merged policy sets by the policies' names and modify indexes, for the store they were built from. */
  private readonly sets = new Map<string, PolicySet>();
  private setsOf: StateStore | undefined;

  constructor(
    private readonly state: () => StateStore,
    readonly enabled: boolean,
    /** Waits once, bounded, for this server to catch up with the leader; absent: never waits. */
    private readonly catchUp?: Pick<AclCatchUp, "wait">,
  ) {}

  /** Install on a server (before start): the endpoints always, the hook only when ACLs are on. */
  static install(host: AclHost): Acl {
    const acl = new Acl(() => host.state, host.cfg.acl.enabled, new AclCatchUp(() => host.driver));
    host.addEndpoints(acl.endpoints());
    if (acl.enabled) host.authorize = (method, args, token) => acl.authorize(method, args, token);
    return acl;
  }

  /** The token a secret belongs to, or undefined (no secret, unknown secret, too long). */
  resolve(secret: string | undefined): Identity | undefined {
    if (!secret || secret.length > MAX_SECRET_CHARS) return undefined;
    const hash = hashSecret(secret);
    const token = this.state().tokenBySecretHash(hash);
    if (!token) return undefined;
    // The lookup is by hash, so the secret's bytes never meet a short-circuiting comparison; this
    // check guards the index against a mismatch and itself runs in constant time.
    if (!timingSafeEqual(Buffer.from(token.SecretHash, "hex"), Buffer.from(hash, "hex"))) return undefined;
    if (token.Type === "management") return { token, management: true };
    return { token, management: false, policies: this.policySet(token) };
  }

  private policySet(token: AclToken): PolicySet {
    const store = this.state();
    // A restore swaps the store; indexes in the new one say nothing about the old one's policies.
    if (store !== this.setsOf) {
      this.sets.clear();
      this.setsOf = store;
    }
    const found: AclPolicy[] = [];
    for (const name of token.Policies) {
      // A token may name a policy that was deleted since; it grants nothing.
      const p = store.policy(name);
      if (p) found.push(p);
    }
    // Within one store every change to a policy bumps its ModifyIndex, so this key names the rules.
    const key = found.map((p) => `${p.Name}@${p.ModifyIndex}`).join(",");
    let set = this.sets.get(key);
    if (!set) {
      set = new PolicySet(found.map((p) => this.parseCached(p)));
      if (this.sets.size >= POLICY_CACHE_MAX) this.sets.clear();
      this.sets.set(key, set);
    }
    return set;
  }

  private parseCached(p: AclPolicy): ParsedPolicy {
    let r = this.parsed.get(p.Rules);
    if (!r) {
      try {
        r = parsePolicyRules(p.Rules);
      } catch {
        // Rules are checked before they are stored; a restored snapshot could still carry bad
        // ones, and a policy that does not parse grants nothing.
        r = { variables: [], operator: undefined, agent: undefined };
      }
      if (this.parsed.size >= POLICY_CACHE_MAX) this.parsed.clear();
      this.parsed.set(p.Rules, r);
    }
    return r;
  }

  /**
   * The authorize hook: throws PERMISSION_DENIED unless `token` may call `method` with `args`. Only a
   * secret this server does not know waits, once, for it to catch up (acl_catch_up.ts); a known one never.
   */
  authorize(method: string, args: Record<string, unknown>, token: string | undefined): void | Promise<void> {
    if (isPublic(method)) return;
    const id = this.resolve(token);
    if (id || !token || token.length > MAX_SECRET_CHARS || !this.catchUp) return this.check(id, method, args);
    return this.catchUp.wait().then((caughtUp) => this.check(caughtUp ? this.resolve(token) : undefined, method, args));
  }

  private check(id: Identity | undefined, method: string, args: Record<string, unknown>): void {
    if (!id) throw permissionDenied();
    if (id.management) return;
    if (!this.clientMay(id.token, id.policies, method, args)) throw permissionDenied();
  }

  private clientMay(token: AclToken, policies: PolicySet, method: string, args: Record<string, unknown>): boolean {
    const op = VAR_OPS[method];
    if (op) return typeof args.path === "string" && policies.allowsVar(args.path, op);
    switch (method) {
      case "Var.List":
        return typeof args.prefix === "string" && policies.allowsAllUnder(args.prefix, "list");
      // Nomad: reading the raft configuration needs operator:read; every operator write and
      // snapshot save/restore needs a management token.
      case "Operator.RaftGetConfiguration":
      case "Operator.RaftStats":
      case "Operator.AutopilotHealth":
      case "Operator.AutopilotGetConfiguration":
      case "Operator.SnapshotHistory":
        return policies.allowsOperator("read");
      case "ACL.AuthorizeAgent":
        return policies.allowsAgent("read");
      case "Region.List":
      case "ACL.TokenSelf":
      case "ACL.ListPolicies": // filtered to the token's own policies
        return true;
      case "ACL.GetToken":
        return args.accessorId === token.AccessorID;
      case "ACL.GetPolicy":
        return typeof args.name === "string" && token.Policies.includes(args.name);
      default:
        return false;
    }
  }

  private requireEnabled(): void {
    if (!this.enabled) throw new EdgeError("BAD_REQUEST", "ACL support disabled");
  }

  endpoints() {
    const state = this.state;
    const accessorId = z.string().min(1).max(LIMITS.idMaxChars);
    const policyName = z.string().min(1).max(LIMITS.nameMaxChars);
    return {
      "ACL.Bootstrap": endpoint({
        kind: "write",
        args: z.object({}),
        handler: async (_a, ctx) => {
          this.requireEnabled();
          if (state().aclBootstrapped()) throw new EdgeError("BAD_REQUEST", "ACL bootstrap already done");
          const secret = crypto.randomUUID();
          const now = Date.now();
          const t = (await ctx.propose({
            op: "acl.bootstrap",
            token: {
              AccessorID: crypto.randomUUID(),
              SecretHash: hashSecret(secret),
              Name: BOOTSTRAP_TOKEN_NAME,
              Type: "management",
              Policies: [],
              CreateTime: now,
            },
            now,
          })) as AclToken;
          return { reply: publicToken(t, secret) };
        },
      }),
      "ACL.UpsertToken": endpoint({
        kind: "write",
        args: z.object({
          accessorId: accessorId.optional(),
          name: z.string().max(LIMITS.nameMaxChars),
          type: z.enum(["management", "client"]),
          policies: z.array(policyName).max(LIMITS.policiesPerToken),
        }),
        handler: async (a, ctx) => {
          this.requireEnabled();
          if (a.type === "management" && a.policies.length > 0)
            throw new EdgeError("BAD_REQUEST", "a management token cannot have policies");
          if (a.type === "client" && a.policies.length === 0)
            throw new EdgeError("BAD_REQUEST", "a client token needs at least one policy");
          const now = Date.now();
          const policies = [...new Set(a.policies)].sort();
          if (a.accessorId !== undefined) {
            const cur = state().tokenByAccessor(a.accessorId);
            if (!cur) throw new EdgeError("NOT_FOUND", `ACL token ${a.accessorId} not found`);
            const t = (await ctx.propose({
              op: "acl.token-upsert",
              token: {
                AccessorID: cur.AccessorID,
                SecretHash: cur.SecretHash,
                Name: a.name,
                Type: a.type,
                Policies: policies,
                CreateTime: cur.CreateTime,
              },
              now,
            })) as AclToken;
            return { reply: publicToken(t) };
          }
          const secret = crypto.randomUUID();
          const t = (await ctx.propose({
            op: "acl.token-upsert",
            token: {
              AccessorID: crypto.randomUUID(),
              SecretHash: hashSecret(secret),
              Name: a.name,
              Type: a.type,
              Policies: policies,
              CreateTime: now,
            },
            now,
          })) as AclToken;
          return { reply: publicToken(t, secret) };
        },
      }),
      "ACL.DeleteToken": endpoint({
        kind: "write",
        args: z.object({ accessorId }),
        handler: async (a, ctx) => {
          this.requireEnabled();
          await ctx.propose({ op: "acl.token-delete", accessorId: a.accessorId, now: Date.now() });
          return emptyReply();
        },
      }),
      "ACL.ListTokens": endpoint({
        kind: "read",
        args: z.object({}),
        handler: async (_a, ctx) => {
          this.requireEnabled();
          return ctx.blocking("acl_tokens", undefined, () => ({
            reply: state()
              .listTokens()
              .map((t) => publicToken(t)),
            index: state().tableIndex("acl_tokens"),
          }));
        },
      }),
      "ACL.GetToken": endpoint({
        kind: "read",
        args: z.object({ accessorId }),
        handler: async (a, ctx) => {
          this.requireEnabled();
          return ctx.blocking("acl_tokens", a.accessorId, () => {
            const t = state().tokenByAccessor(a.accessorId);
            return { reply: t ? publicToken(t) : null, index: state().tableIndex("acl_tokens") };
          });
        },
      }),
      "ACL.TokenSelf": endpoint({
        kind: "read",
        args: z.object({}),
        handler: async (_a, ctx) => {
          this.requireEnabled();
          const id = this.resolve(ctx.q.token);
          if (!id) throw permissionDenied();
          return { reply: publicToken(id.token) };
        },
      }),
      "ACL.UpsertPolicy": endpoint({
        kind: "write",
        args: z.object({
          name: policyName,
          description: z.string().max(LIMITS.descriptionMaxChars),
          rules: z.string().max(LIMITS.rulesMaxChars),
        }),
        handler: async (a, ctx) => {
          this.requireEnabled();
          parsePolicyRules(a.rules);
          const p = (await ctx.propose({
            op: "acl.policy-upsert",
            policy: { Name: a.name, Description: a.description, Rules: a.rules },
            now: Date.now(),
          })) as AclPolicy;
          return { reply: publicPolicy(p) };
        },
      }),
      "ACL.DeletePolicy": endpoint({
        kind: "write",
        args: z.object({ name: policyName }),
        handler: async (a, ctx) => {
          this.requireEnabled();
          await ctx.propose({ op: "acl.policy-delete", name: a.name, now: Date.now() });
          return emptyReply();
        },
      }),
      "ACL.ListPolicies": endpoint({
        kind: "read",
        args: z.object({}),
        handler: async (_a, ctx) => {
          this.requireEnabled();
          const visible = this.policyFilter(ctx);
          return ctx.blocking("acl_policies", undefined, () => ({
            reply: state().listPolicies().filter(visible).map(policyStub),
            index: state().tableIndex("acl_policies"),
          }));
        },
      }),
      "ACL.GetPolicy": endpoint({
        kind: "read",
        args: z.object({ name: policyName }),
        handler: async (a, ctx) => {
          this.requireEnabled();
          return ctx.blocking("acl_policies", a.name, () => {
            const p = state().policy(a.name);
            return { reply: p ? publicPolicy(p) : null, index: state().tableIndex("acl_policies") };
          });
        },
      }),
      // The HTTP layer asks this before serving the agent's own routes (/v1/agent/self,
      // /v1/metrics), which answer locally and never become calls; the hook decides.
      "ACL.AuthorizeAgent": endpoint({ kind: "local", args: z.object({}), handler: async () => emptyReply() }),
    };
  }

  /** Management tokens (and everyone while ACLs are off) see every policy; a client token its own. */
  private policyFilter(ctx: EndpointContext): (p: AclPolicy) => boolean {
    if (!this.enabled) return () => true;
    const id = this.resolve(ctx.q.token);
    if (!id) return () => false;
    if (id.management) return () => true;
    const own = new Set(id.token.Policies);
    return (p) => own.has(p.Name);
  }
}

/** A token as the ACL endpoints answer it (Nomad's shape): never the secret's hash; the secret only when just created. */
export interface PublicToken {
  AccessorID: string;
  SecretID?: string;
  Name: string;
  Type: "management" | "client";
  Policies: string[];
  Global: boolean;
  /** RFC 3339. */
  CreateTime: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export type PublicPolicy = Pick<AclPolicy, "Name" | "Description" | "Rules" | "CreateIndex" | "ModifyIndex">;
/** A policy in a listing: without its rules. */
export type PolicyStub = Pick<AclPolicy, "Name" | "Description" | "CreateIndex" | "ModifyIndex">;

export function publicToken(t: AclToken, secret?: string): PublicToken {
  return {
    AccessorID: t.AccessorID,
    ...(secret !== undefined ? { SecretID: secret } : {}),
    Name: t.Name,
    Type: t.Type,
    Policies: [...t.Policies],
    Global: false,
    CreateTime: new Date(t.CreateTime).toISOString(),
    CreateIndex: t.CreateIndex,
    ModifyIndex: t.ModifyIndex,
  };
}

export function publicPolicy(p: AclPolicy): PublicPolicy {
  return { Name: p.Name, Description: p.Description, Rules: p.Rules, CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex };
}

function policyStub(p: AclPolicy): PolicyStub {
  return { Name: p.Name, Description: p.Description, CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex };
}
