// `node version`: the version, git commit and Bun runtime baked into the binary.
import { BUN_VERSION, GIT_COMMIT, VERSION } from "../lib/version.ts";
import type { Command } from "./command.ts";

export const versionCommand: Command = {
  path: ["version"],
  synopsis: "Print the version, git commit and Bun version",
  usage: "",
  flags: [],
  doing: "printing the version",
  async run(f, io) {
    if (f.args.length > 0) {
      io.err(`Error printing the version: unexpected arguments: ${f.args.join(" ")}`);
      return 1;
    }
    io.out(`edgenode v${VERSION}\nGit commit: ${GIT_COMMIT}\nBun: ${BUN_VERSION}`);
    return 0;
  },
};
