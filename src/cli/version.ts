// `node version`: the version, git commit and Bun runtime baked into the binary.
import { BUN_VERSION, GIT_COMMIT, VERSION } from "../lib/version.ts";
import { simpleCommand } from "./simple_command.ts";

export const versionCommand = simpleCommand({
  path: ["version"],
  synopsis: "Print the version, git commit and Bun version",
  usage: "",
  doing: "printing the version",
  local: true,
  args: "none",
  run: async () => `edgenode v${VERSION}\nGit commit: ${GIT_COMMIT}\nBun: ${BUN_VERSION}`,
});
