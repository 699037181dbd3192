// The leader's group commit across rounds: writes that arrive while its newest batch is uncommitted
// are held, then proposed together and in order once it commits (or at the driver's tick).
import { expect, test } from "bun:test";
import { NotLeaderError } from "../../src/raft/errors.ts";
import { RoundGate } from "../../src/server/round_gate.ts";
import { waitFor } from "../support/wait.ts";

function gate(refuse = new Set<string>()) {
  const proposed: string[] = [];
  const g = new RoundGate({
    proposeNow: (data) => {
      const s = new TextDecoder().decode(data);
      if (refuse.has(s)) throw new NotLeaderError("");
      proposed.push(s);
      return Promise.resolve(`applied ${s}`);
    },
  });
  return { g, proposed };
}
const bytes = (s: string) => new TextEncoder().encode(s);
/** One turn of the event loop: what the gate schedules with setImmediate has run after it. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a leader holds writes while its newest batch is uncommitted and proposes them in order once it commits", async () => {
  const { g, proposed } = gate();
  expect(g.holds(true)).toBe(false);
  g.readied(true, true, 5, 4); // became leader, wrote a batch ending at 5, commit 4
  expect(g.holds(true)).toBe(true);
  expect(g.holds(false)).toBe(false); // a follower's proposal is refused by the core at once, not held
  const a = g.hold(bytes("a"), 1000);
  const b = g.hold(bytes("b"), 1000);
  g.afterReady(true);
  await nextTurn();
  expect(proposed).toEqual([]); // still open
  g.readied(false, true, undefined, 5); // the batch committed
  expect(g.holds(true)).toBe(true); // earlier writes still wait: a new one may not overtake them
  g.afterReady(true);
  const c = g.hold(bytes("c"), 1000); // read before the loop's next turn: joins the batch
  expect(proposed).toEqual([]);
  await waitFor(() => proposed.length === 3, 5000, "the held batch proposed");
  expect(proposed).toEqual(["a", "b", "c"]);
  expect(g.size).toBe(0);
  expect(g.holds(true)).toBe(false);
  expect(await a).toBe("applied a");
  expect(await b).toBe("applied b");
  expect(await c).toBe("applied c");
});

test("the tick proposes held writes even while the round stays open (no quorum)", async () => {
  const { g, proposed } = gate();
  g.readied(true, true, 9, 3);
  const a = g.hold(bytes("a"), 1000);
  g.afterReady(true);
  await nextTurn();
  expect(proposed).toEqual([]);
  g.release();
  expect(proposed).toEqual(["a"]);
  expect(await a).toBe("applied a");
});

test("a held write the core refuses fails alone; a leadership change reopens nothing", async () => {
  const { g, proposed } = gate(new Set(["x"]));
  g.readied(true, true, 2, 1);
  const x = g.hold(bytes("x"), 1000);
  const y = g.hold(bytes("y"), 1000);
  g.readied(true, false, undefined, undefined); // lost leadership: no round counts any more
  g.afterReady(false);
  await expect(x).rejects.toBeInstanceOf(NotLeaderError);
  expect(await y).toBe("applied y");
  expect(proposed).toEqual(["y"]);
  g.readied(true, true, undefined, undefined); // leader again: nothing written in this term yet
  expect(g.holds(true)).toBe(false);
});

test("stopping fails every held write", async () => {
  const { g, proposed } = gate();
  g.readied(true, true, 7, 6);
  const a = g.hold(bytes("a"), 1000);
  g.fail(new Error("stopping"));
  await expect(a).rejects.toThrow("stopping");
  g.readied(false, true, undefined, 7);
  g.afterReady(true);
  await nextTurn();
  expect(proposed).toEqual([]);
});
