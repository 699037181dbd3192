// `node operator keygen`: a new cluster key (32 random bytes, base64) for `server { encrypt = "..." }`,
// as `consul keygen` and `nomad operator gossip keyring generate` print theirs.
import { generateClusterKey } from "../transport/cluster_keys.ts";
import type { Command } from "./command.ts";

export const keygenCommand: Command = {
  path: ["operator", "keygen"],
  synopsis: 'Print a new cluster key for server { encrypt = "..." } (the same key on every server)',
  usage: "",
  flags: [],
  doing: "generating a key",
  async run(f, io) {
    if (f.args.length > 0) {
      io.err(`Error generating a key: unexpected arguments: ${f.args.join(" ")}`);
      return 1;
    }
    io.out(generateClusterKey());
    return 0;
  },
};
