// The command table of the `node` binary.
import { agentCommand } from "./agent.ts";
import { dispatch, type Command, type Io } from "./command.ts";
import { versionCommand } from "./version.ts";

export const COMMANDS: Command[] = [agentCommand, versionCommand];

export function runCli(argv: string[], io: Io): Promise<number> {
  return dispatch(COMMANDS, argv, io);
}
