// Go-style durations ("15s", "1m30s", "250ms") and IEC sizes ("64KiB", "1GiB").
import { badRequest } from "./errors.ts";

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/;

/** Parse a duration into milliseconds; throws a message saying what was expected. */
export function parseDuration(s: string): number {
  let rest = s.trim();
  if (rest === "0") return 0;
  if (rest.length === 0) throw badRequest(`invalid duration "${s}": expected a number and unit such as "15s"`);
  let total = 0;
  while (rest.length > 0) {
    const m = DURATION_RE.exec(rest);
    if (!m) throw badRequest(`invalid duration "${s}": expected a number and unit such as "15s" (units ns, us, ms, s, m, h)`);
    total += Number(m[1]) * (DURATION_UNITS[m[2]!] ?? 0);
    rest = rest.slice(m[0].length);
  }
  return total;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s ? `${s}s` : ""}`;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parse a byte size ("64KiB", "10MB", "4096") into bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) throw badRequest(`invalid size "${s}": expected a number with an optional unit such as "64KiB"`);
  const unit = (m[2] ?? "").toLowerCase() || "b";
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) throw badRequest(`invalid size "${s}": unknown unit "${m[2]}" (use B, KB, MB, GB, KiB, MiB, GiB)`);
  return Math.floor(Number(m[1]) * mult);
}

/** A byte count for people: "512 B", "1.5 MiB". */
export function formatSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
