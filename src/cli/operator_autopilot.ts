// `node operator autopilot health|get-config|set-config`: each server's health as the leader's
// autopilot sees it, and autopilot's configuration (set for every server through raft).
import { type AutopilotConfiguration, autopilotConfiguration, autopilotHealth, setAutopilotConfiguration } from "../api/autopilot.ts";
import { bool, CliError, int, str } from "./command.ts";
import { simpleCommand } from "./simple_command.ts";
import { formatTable } from "./table.ts";

export const autopilotHealthCommand = simpleCommand({
  path: ["operator", "autopilot", "health"],
  synopsis: "Show each server's health as autopilot sees it",
  usage: "[options]",
  doing: "reading autopilot health",
  flags: [{ name: "stale", kind: "bool", help: "Let any server answer (only the leader knows health)." }],
  args: "none",
  async run(f, _, client) {
    const h = await autopilotHealth(await client(), { stale: bool(f, "stale") });
    const table = formatTable([
      ["Name", "ID", "Address", "Version", "Leader", "Voter", "Healthy", "LastContact", "LastIndex", "StableSince"],
      ...h.Servers.map((s) => [
        s.Name,
        s.ID,
        s.Address,
        s.Version,
        String(s.Leader),
        String(s.Voter),
        String(s.Healthy),
        s.LastContact,
        String(s.LastIndex),
        s.StableSince || "-",
      ]),
    ]);
    return `Healthy: ${h.Healthy}\nFailure tolerance: ${h.FailureTolerance}\n\n${table}`;
  },
});

function formatConfig(c: AutopilotConfiguration): string {
  return formatTable([
    ["CleanupDeadServers", String(c.CleanupDeadServers)],
    ["LastContactThreshold", c.LastContactThreshold],
    ["MaxTrailingLogs", String(c.MaxTrailingLogs)],
    ["ServerStabilizationTime", c.ServerStabilizationTime],
    ["DeadServerLastContactThreshold", c.DeadServerLastContactThreshold],
  ]);
}

export const autopilotGetConfigCommand = simpleCommand({
  path: ["operator", "autopilot", "get-config"],
  synopsis: "Show autopilot's configuration",
  usage: "[options]",
  doing: "reading the autopilot configuration",
  flags: [{ name: "stale", kind: "bool", help: "Let any server answer from its own state." }],
  args: "none",
  async run(f, _, client) {
    return formatConfig(await autopilotConfiguration(await client(), { stale: bool(f, "stale") }));
  },
});

const DURATIONS = [
  ["last-contact-threshold", "LastContactThreshold", "Time without an answer after which a server is unhealthy."],
  ["server-stabilization-time", "ServerStabilizationTime", "Time a new server must stay healthy before it votes."],
  [
    "dead-server-last-contact-threshold",
    "DeadServerLastContactThreshold",
    "Time a failed voter may stay before it is removed without a replacement.",
  ],
] as const;

export const autopilotSetConfigCommand = simpleCommand({
  path: ["operator", "autopilot", "set-config"],
  synopsis: "Change autopilot's configuration (for every server, through raft)",
  usage: "[options] [-cleanup-dead-servers=true|false] [-last-contact-threshold D] ...",
  doing: "setting the autopilot configuration",
  flags: [
    { name: "cleanup-dead-servers", kind: "bool", help: "Remove failed voters (true or false)." },
    { name: "max-trailing-logs", kind: "int", arg: "N", help: "Entries a server may trail the leader by and stay healthy." },
    ...DURATIONS.map(([name, , help]) => ({ name, kind: "string" as const, arg: "DURATION", help })),
  ],
  args: "none",
  check(f) {
    const change: Parameters<typeof setAutopilotConfiguration>[1] = {};
    if (f.set.has("cleanup-dead-servers")) change.CleanupDeadServers = bool(f, "cleanup-dead-servers");
    const n = int(f, "max-trailing-logs");
    if (f.set.has("max-trailing-logs") && n !== undefined) change.MaxTrailingLogs = n;
    for (const [name, field] of DURATIONS) if (f.set.has(name)) change[field] = str(f, name);
    if (Object.keys(change).length === 0) throw new CliError("Error setting the autopilot configuration: no setting given");
    return change;
  },
  async run(_, change, client) {
    const now = await setAutopilotConfiguration(await client(), change);
    return `Configuration updated\n${formatConfig(now)}`;
  },
});
