// Seeded tests run a fixed set of seeds and a fresh range picked from the clock, so each run of the
// suite tries seeds no earlier run tried. The range is printed with the command that replays it, and a
// failure names its seed with the command that replays that seed alone.

export interface FreshSeeds {
  /** First seed of the range: the env variable's value if set, else the clock (ms) mod 2^31. */
  base: number;
  /** How many seeds: the count variable's value if set, else the test's own. */
  count: number;
  /** replayCommand for this file and variable. */
  replay(seed: number, count?: number): string;
}

/** The command that runs the fresh-seed tests of `file` (named "... fresh seeds ...") on `count` seeds from `seed`. */
export function replayCommand(file: string, seed: number, count = 1, env = "EDGENODE_SEED"): string {
  return `${env}=${seed} ${env}_COUNT=${count} bun test ${file} -t "fresh seeds"`;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

/**
 * The fresh range of `what` in test file `file`: base from `env` (default EDGENODE_SEED) or the clock,
 * count from `${env}_COUNT` or `count`. Logs the range and its replay command.
 */
export function freshSeeds(what: string, file: string, count: number, env = "EDGENODE_SEED"): FreshSeeds {
  const base = envInt(env) ?? Date.now() % 2 ** 31;
  const n = envInt(`${env}_COUNT`) ?? count;
  const replay = (seed: number, k = 1) => replayCommand(file, seed, k, env);
  console.log(`${what}: fresh seeds ${base}..${base + n - 1}; replay: ${replay(base, n)}`);
  return { base, count: n, replay };
}
