// The configuration as /v1/agent/self shows it: every secret-bearing key elided. File paths
// (tls.key_file and the like) stay visible; the contents of tokens, secrets and keys do not.
import type { Config } from "./schema.ts";

export const REDACTED = "<redacted>";

/** A key whose value is a secret itself (not the path of a file holding one). */
const SECRET_KEY = /(token|secret|password|passphrase|encrypt|credential|private_key)(?!_file$|_path$)/i;

/** A deep copy of `cfg` with secret values replaced by "<redacted>" (empty values, and empty lists, stay empty). */
export function redactConfig(cfg: Config): Record<string, unknown> {
  return redactValue(cfg, 0) as Record<string, unknown>;
}

function redactValue(v: unknown, depth: number): unknown {
  // Configs are shallow; the bound only guards against a cycle someone introduces later.
  if (depth > 16) return REDACTED;
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] =
        SECRET_KEY.test(k) && x !== "" && x !== undefined && x !== null && !(Array.isArray(x) && x.length === 0)
          ? REDACTED
          : redactValue(x, depth + 1);
    }
    return out;
  }
  return v;
}
