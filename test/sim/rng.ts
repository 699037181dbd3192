// The seeded generator the simulation uses: mulberry32 with the seed mixed first, so consecutive
// small seeds start far apart. Changing it would change what every printed seed replays.
import { mulberry32 } from "../support/mulberry32.ts";

export function seeded(seed: number): () => number {
  return mulberry32((seed ^ 0x9e3779b9) >>> 0);
}
