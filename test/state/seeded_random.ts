// A seeded generator for the state tests (mulberry32): the seed comes from
// EDGENODE_SEED or the clock, and tests print it when they fail.
export function seedFromEnv(): number {
  const env = process.env.EDGENODE_SEED;
  return env !== undefined ? Number(env) >>> 0 : (Date.now() ^ (Math.random() * 2 ** 32)) >>> 0;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
