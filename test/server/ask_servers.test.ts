// Asking every server: each answers in the configuration's order; this server answers itself; a server
// that fails, times out or answers something that does not parse is shown with the reason, not dropped.
import { expect, test } from "bun:test";
import { z } from "zod";
import { EdgeError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { askEveryServer } from "../../src/server/ask_servers.ts";
import { Members } from "../../src/server/members.ts";

test("every server of the configuration is answered for, in order, with the reason when it has no reply", async () => {
  const members = new Members({ log: silentLogger(), nodeId: () => "a", setPeers: () => {} });
  members.set({
    servers: ["a", "b", "c", "d"].map((id) => ({ id, address: `${id}:4647`, voter: true })),
  });
  members.names.set("a", "one");
  members.names.set("b", "two");
  const asked: string[] = [];
  const answers = await askEveryServer(
    {
      members,
      nodeId: () => "a",
      call: async (address, method) => {
        asked.push(`${address} ${method}`);
        if (address === "b:4647") return { n: 2 };
        if (address === "c:4647") throw new EdgeError("UNAVAILABLE", "c is down");
        return { n: "not a number" };
      },
    },
    "Test.Ask",
    {},
    z.object({ n: z.number() }),
    () => ({ n: 1 }),
  );
  expect(asked.sort()).toEqual(["b:4647 Test.Ask", "c:4647 Test.Ask", "d:4647 Test.Ask"]);
  expect(answers).toEqual([
    { ID: "a", Node: "one", Address: "a:4647", reply: { n: 1 } },
    { ID: "b", Node: "two", Address: "b:4647", reply: { n: 2 } },
    { ID: "c", Node: "", Address: "c:4647", error: "c is down" },
    { ID: "d", Node: "", Address: "d:4647", error: "an answer to Test.Ask that does not parse" },
  ]);
});
