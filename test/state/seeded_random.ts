// A seeded generator for the state tests (mulberry32): the seed comes from
// EDGENODE_SEED or the clock, and tests print it when they fail.
import { mulberry32 } from "../support/mulberry32.ts";
export function seedFromEnv(): number {
  const env = process.env.EDGENODE_SEED;
  return env !== undefined ? Number(env) >>> 0 : (Date.now() ^ (Math.random() * 2 ** 32)) >>> 0;
}

export { mulberry32 };

/** Run `body` and, if it throws, say which seed reproduces it. */
export function withSeed(name: string, body: (rand: () => number) => void): void {
  const seed = seedFromEnv();
  try {
    body(mulberry32(seed));
  } catch (e) {
    console.error(`${name} failed with EDGENODE_SEED=${seed}`);
    throw e;
  }
}

export async function withSeedAsync(name: string, body: (rand: () => number) => Promise<void>): Promise<void> {
  const seed = seedFromEnv();
  try {
    await body(mulberry32(seed));
  } catch (e) {
    console.error(`${name} failed with EDGENODE_SEED=${seed}`);
    throw e;
  }
}
