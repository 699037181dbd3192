// Formation with bootstrap_expect = 3, in-process, many rounds: whichever server bootstraps first,
// and however its first raft messages race the others' own bootstrap, one leader with three voters
// emerges. (A server whose raft started from a peer's message, before it knew any peer's address,
// used to drop every answer, leaving the first server a pre-candidate forever in ~1 of 3 rounds.)
import { expect, test } from "bun:test";
import { freePort, startAgent } from "../acl/harness.ts";
import { waitFor } from "../support/wait.ts";

const ROUNDS = Number(process.env.EDGENODE_LONG === "1" ? 40 : 8);

test(`three servers form a cluster, ${ROUNDS} rounds`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const rpcs = [freePort(), freePort(), freePort()];
    const join = rpcs.map((p) => `"127.0.0.1:${p}"`).join(", ");
    const extraHcl = `server {\n  bootstrap_expect = 3\n  server_join { retry_join = [${join}] }\n}\n`;
    const agents = await Promise.all(rpcs.map((rpc) => startAgent(false, { rpc, extraHcl, waitLeader: false })));
    try {
      await waitFor(() => agents.every((a) => a.server.health().ok), 10_000, `round ${round}: every server to see a leader`);
      const leaders = new Set(agents.map((a) => a.server.driver?.leader));
      expect(leaders.size).toBe(1);
      await waitFor(
        () => agents.every((a) => a.server.currentConfig().servers.filter((s) => s.voter).length === 3),
        10_000,
        `round ${round}: three voters everywhere`,
      );
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
  }
}, 180_000);
