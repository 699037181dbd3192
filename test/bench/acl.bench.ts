// Cost of the authorize hook per call: resolving a secret (SHA-256 + index lookup) and evaluating a
// client token's policies, beside the bare SHA-256 of the secret measured in the same run.
// Run: bun test/bench/acl.bench.ts
import { Acl, hashSecret } from "../../src/server/acl.ts";
import { parsePolicyRules } from "../../src/server/acl_policy.ts";
import { StateStore } from "../../src/state/state_store.ts";

const state = new StateStore();
let index = 0;
const apply = (cmd: unknown) => {
  const r = state.apply(++index, cmd);
  if (!r.ok) throw new Error(r.message);
};
const mgmt = crypto.randomUUID();
const client = crypto.randomUUID();
apply({
  op: "acl.bootstrap",
  token: { AccessorID: crypto.randomUUID(), SecretHash: hashSecret(mgmt), Name: "b", Type: "management", Policies: [], CreateTime: 1 },
  now: 1,
});
// A policy with 50 path rules: a realistic upper middle.
const rules = `variables {\n${Array.from({ length: 50 }, (_, i) => `  path "team${i}/*" { capabilities = ["read", "list"] }\n  path "team${i}/secret" { capabilities = ["deny"] }`).join("\n")}\n}\n`;
apply({ op: "acl.policy-upsert", policy: { Name: "p", Description: "", Rules: rules }, now: 1 });
apply({
  op: "acl.token-upsert",
  token: { AccessorID: crypto.randomUUID(), SecretHash: hashSecret(client), Name: "c", Type: "client", Policies: ["p"], CreateTime: 1 },
  now: 1,
});
const acl = new Acl(() => state, true);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function measure(fn: () => unknown, n = 5000, rounds = 7): number {
  for (let i = 0; i < n; i++) fn();
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const s = performance.now();
    for (let i = 0; i < n; i++) fn();
    per.push(((performance.now() - s) * 1000) / n);
  }
  return median(per);
}
const denied = () => {
  try {
    acl.authorize("Var.Put", { path: "team7/x" }, client);
  } catch {
    return;
  }
  throw new Error("expected a denial");
};

const rows: [string, number][] = [
  ["baseline: SHA-256 of a secret", measure(() => hashSecret(client))],
  ["authorize, management token", measure(() => acl.authorize("Var.Put", { path: "a/b" }, mgmt))],
  ["authorize, client token, 100-rule policy, allowed read", measure(() => acl.authorize("Var.Get", { path: "team42/x" }, client))],
  ["authorize, client token, denied write (throws)", measure(denied)],
  ["authorize, client token, list prefix", measure(() => acl.authorize("Var.List", { prefix: "team3/pub/" }, client))],
  [
    "anonymous (no token), denied",
    measure(() => {
      try {
        acl.authorize("Var.Get", { path: "x" }, undefined);
      } catch {}
    }),
  ],
  ["parsePolicyRules, 100 rules (uncached cost)", measure(() => parsePolicyRules(rules), 200)],
];
console.log("| operation | median µs/call |\n|---|---:|");
for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(2)} |`);
