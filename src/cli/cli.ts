// The command table of the `node` binary.
import { ACL_COMMANDS } from "./acl.ts";
import { agentCommand } from "./agent.ts";
import { dispatch, type Command, type Io } from "./command.ts";
import { keygenCommand } from "./keygen.ts";
import { autopilotGetConfigCommand, autopilotHealthCommand, autopilotSetConfigCommand } from "./operator_autopilot.ts";
import { raftRecoverCommand } from "./operator_recover.ts";
import { raftListPeersCommand, raftRemovePeerCommand, raftStatsCommand, raftTransferLeadershipCommand } from "./operator_raft.ts";
import { snapshotInspectCommand, snapshotRestoreCommand, snapshotSaveCommand } from "./snapshot.ts";
import { snapshotHistoryCommand } from "./snapshot_history.ts";
import { serverMembersCommand, statusCommand } from "./status.ts";
import { TLS_COMMANDS } from "./tls.ts";
import { varGetCommand, varListCommand, varPurgeCommand, varPutCommand } from "./var.ts";
import { varLockCommand } from "./var_lock.ts";
import { versionCommand } from "./version.ts";

export const COMMANDS: Command[] = [
  agentCommand,
  varGetCommand,
  varPutCommand,
  varListCommand,
  varPurgeCommand,
  varLockCommand,
  keygenCommand,
  raftListPeersCommand,
  raftStatsCommand,
  raftRemovePeerCommand,
  raftTransferLeadershipCommand,
  raftRecoverCommand,
  autopilotHealthCommand,
  autopilotGetConfigCommand,
  autopilotSetConfigCommand,
  snapshotSaveCommand,
  snapshotRestoreCommand,
  snapshotInspectCommand,
  snapshotHistoryCommand,
  ...ACL_COMMANDS,
  ...TLS_COMMANDS,
  serverMembersCommand,
  statusCommand,
  versionCommand,
];

export function runCli(argv: string[], io: Io): Promise<number> {
  return dispatch(COMMANDS, argv, io);
}
