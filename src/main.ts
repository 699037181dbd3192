// Entry point of the compiled binary: argv to the CLI, exit code out.
import { runCli } from "./cli/cli.ts";
import { processIo } from "./cli/command.ts";

const code = await runCli(process.argv.slice(2), processIo());
// The agent keeps running until a signal; every other command ends here.
if (code !== undefined) process.exit(code);
