// `node operator keygen`: a new cluster key (32 random bytes, base64) for `server { encrypt = "..." }`,
// as `consul keygen` and `nomad operator gossip keyring generate` print theirs.
import { generateClusterKey } from "../transport/cluster_keys.ts";
import { simpleCommand } from "./simple_command.ts";

export const keygenCommand = simpleCommand({
  path: ["operator", "keygen"],
  synopsis: 'Print a new cluster key for server { encrypt = "..." } (the same key on every server)',
  usage: "",
  doing: "generating a key",
  local: true,
  args: "none",
  run: async () => generateClusterKey(),
});
