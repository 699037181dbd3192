// `node operator autopilot health`: each server's health as the leader's autopilot sees it.
import { autopilotHealth } from "../api/autopilot.ts";
import { bool } from "./command.ts";
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
