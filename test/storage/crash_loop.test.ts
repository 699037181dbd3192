// Crash loop: a child process applies log operations (append, conflicting append, compact,
// install snapshot) and is SIGKILLed at random moments. After each kill the log must equal the
// acknowledged state, or that state plus the one operation in flight: nothing acknowledged lost,
// nothing partial visible. 200 iterations by default (~15 s), 1000 with EDGENODE_LONG=1;
// EDGENODE_SEED=n replays a seed.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { Wal } from "../../src/storage/wal.ts";
import { entryProblem, rng } from "./fixtures/entries.ts";

const ITERATIONS = process.env.EDGENODE_LONG === "1" ? 1000 : 200;
const root = mkdtempSync(join(tmpdir(), "edgenode-crash-"));
const children = new Set<Subprocess>();
afterAll(() => {
  for (const c of children) c.kill(9);
  rmSync(root, { recursive: true, force: true });
});
const CHILD = join(import.meta.dir, "fixtures", "crash_child.ts");

interface Model {
  first: number;
  last: number;
  terms: Map<number, number>;
}
const clone = (m: Model): Model => ({ first: m.first, last: m.last, terms: new Map(m.terms) });

function applyOp(m: Model, op: string[]): Model {
  const n = clone(m);
  const [kind, a, b, c] = op;
  if (kind === "A") {
    const f = Number(a);
    const count = Number(b);
    for (let i = f; i <= n.last; i++) n.terms.delete(i);
    for (let i = f; i < f + count; i++) n.terms.set(i, Number(c));
    n.last = f + count - 1;
  } else if (kind === "C") {
    const k = Number(a);
    if (k >= n.first) {
      for (let i = n.first; i <= k; i++) n.terms.delete(i);
      n.first = k + 1;
    }
  } else if (kind === "I") {
    n.terms.clear();
    n.first = Number(a) + 1;
    n.last = Number(a);
  } else throw new Error(`unknown op ${op.join(" ")}`);
  return n;
}

function differs(w: Wal, m: Model): string | undefined {
  if (w.firstIndex() !== m.first || w.lastIndex() !== m.last)
    return `range ${w.firstIndex()}..${w.lastIndex()}, model ${m.first}..${m.last}`;
  if (m.last < m.first) return undefined;
  const es = w.entries(m.first, m.last + 1, Number.MAX_SAFE_INTEGER);
  for (const e of es) {
    if (e.term !== m.terms.get(e.index)) return `entry ${e.index} term ${e.term}, model ${m.terms.get(e.index)}`;
    const p = entryProblem(e);
    if (p) return p;
  }
  return undefined;
}

async function readUntil(
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> },
  acc: { text: string },
  pred: (t: string) => boolean,
  ms: number,
) {
  const deadline = Date.now() + ms;
  const dec = new TextDecoder();
  while (!pred(acc.text)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`child did not get ready in ${ms} ms; output: ${acc.text.slice(-200)}`);
    const res = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
    if (!res || res.done) break;
    acc.text += dec.decode(res.value, { stream: true });
  }
}

test(
  `WAL survives ${ITERATIONS} SIGKILLs with every acknowledged batch intact`,
  async () => {
    const seed = Number(process.env.EDGENODE_SEED ?? Date.now() % 1_000_000);
    const r = rng(seed);
    const dir = join(root, "log");
    let model: Model = { first: 1, last: 0, terms: new Map() };
    let withOp = 0;
    let ops = 0;
    for (let it = 0; it < ITERATIONS; it++) {
      const child = Bun.spawn([process.execPath, CHILD, "wal", dir, String(seed * 1000 + it)], { stdout: "pipe", stderr: "pipe" });
      children.add(child);
      const reader = child.stdout.getReader();
      const acc = { text: "" };
      await readUntil(reader, acc, (t) => t.includes("\n"), 15_000);
      await Bun.sleep(Math.floor(r() * 40)); // the random moment: child is mid-operation
      child.kill(9);
      await child.exited;
      children.delete(child);
      for (;;) {
        const res = await reader.read();
        if (res.done) break;
        acc.text += new TextDecoder().decode(res.value);
      }
      const lines = acc.text.split("\n").filter((l) => l.length > 0);
      const ready = (lines[0] ?? "").split(" ");
      if (ready[0] !== "R")
        throw new Error(`seed ${seed} it ${it}: child said ${lines[0]}; stderr ${await new Response(child.stderr).text()}`);
      // The child opened what the last check (a separate open) saw: two opens of one log agree.
      if (Number(ready[1]) !== model.first || Number(ready[2]) !== model.last) {
        throw new Error(
          `seed ${seed} iteration ${it}: the child opened ${ready[1]}..${ready[2]}, the previous check saw ${model.first}..${model.last}`,
        );
      }
      let inflight: string[] | undefined;
      for (const l of lines.slice(1)) {
        if (l === "K") {
          model = applyOp(model, inflight as string[]);
          inflight = undefined;
          ops++;
        } else inflight = l.split(" ").slice(1);
      }
      const w = await Wal.open(dir, { segmentBytes: 16 * 1024, cacheBytes: 0, log: () => {} });
      try {
        const plain = differs(w, model);
        if (plain !== undefined) {
          const after = inflight ? applyOp(model, inflight) : undefined;
          const withIt = after ? differs(w, after) : "no op in flight";
          if (withIt !== undefined) {
            throw new Error(
              `seed ${seed} iteration ${it}: log matches neither the acknowledged state (${plain}) nor it plus the op in flight ${inflight?.join(" ")} (${withIt})`,
            );
          }
          model = after as Model;
          withOp++;
        }
      } finally {
        await w.close();
      }
    }
    const segs = readdirSync(dir).filter((f) => f.endsWith(".wal")).length;
    console.log(
      `crash loop: seed ${seed}, ${ITERATIONS} kills, ${ops} acknowledged ops, ${withOp} in-flight ops found durable, log ${model.first}..${model.last} in ${segs} segments`,
    );
    expect(ops).toBeGreaterThan(ITERATIONS);
  },
  ITERATIONS * 5_000,
);
