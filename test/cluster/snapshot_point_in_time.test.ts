// A snapshot taken while writes stream in is a consistent point-in-time view: it holds exactly the
// writes at or below its index and none above, whichever server it was saved through.
import { describe, expect, test } from "bun:test";
import { readSnapshot } from "../../src/snapshot/reader.ts";
import { waitFor, withLogs, useCluster } from "./harness.ts";

const cluster = useCluster("pit", { leaderMs: false });

async function* chunksOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += 65536) yield bytes.subarray(i, i + 65536);
}

describe("snapshot during writes", () => {
  test(
    "holds exactly the acknowledged writes at or below its index, saved through a follower and the leader",
    () =>
      withLogs(cluster, async () => {
        const leader = await cluster.waitForLeader(15_000);
        const follower = cluster.followers(leader)[0]!;
        // Each writer overwrites its own key with an increasing counter; acks record (value, index).
        const acks = new Map<string, { value: number; index: number }[]>();
        let stop = false;
        const writers = [0, 1, 2, 3].map(async (w) => {
          const key = `pit/w${w}`;
          const list: { value: number; index: number }[] = [];
          acks.set(key, list);
          for (let v = 1; !stop; v++) {
            const r = await leader.putVar(key, { v: String(v) });
            list.push({ value: v, index: r.ModifyIndex });
          }
        });
        const saves: { index: number; bytes: Uint8Array; via: string }[] = [];
        for (const via of [follower, leader, follower]) {
          // Let some writes land between saves.
          const before = [...acks.values()].reduce((n, l) => n + l.length, 0);
          await waitFor(
            "20 more acknowledged writes",
            10_000,
            () => [...acks.values()].reduce((n, l) => n + l.length, 0) >= before + 20,
            5,
          );
          const r = await fetch(`${via.url}/v1/operator/snapshot`);
          expect(r.status).toBe(200);
          const bytes = new Uint8Array(await r.arrayBuffer());
          const digest = r.headers.get("digest")!;
          const h = new Bun.CryptoHasher("sha256").update(bytes).digest("base64");
          expect(digest).toBe(`sha-256=${h}`);
          saves.push({ index: Number(r.headers.get("x-edgenode-index")), bytes, via: via.name });
        }
        stop = true;
        await Promise.all(writers);
        for (const save of saves) {
          const reader = readSnapshot(chunksOf(save.bytes));
          const header = await reader.header;
          expect(header.index).toBe(save.index);
          const inFile = new Map<string, { v: number; modify: number }>();
          for await (const rec of reader.records) {
            if (rec.t !== "vars") continue;
            const v = rec.v as { Path: string; Items: { v: string }; ModifyIndex: number };
            if (v.Path.startsWith("pit/")) inFile.set(v.Path, { v: Number(v.Items.v), modify: v.ModifyIndex });
          }
          for (const [key, list] of acks) {
            // The newest acknowledged write at or below the snapshot's index is exactly what the file holds.
            const expected = list.filter((a) => a.index <= save.index).at(-1);
            const got = inFile.get(key);
            if (!expected) {
              expect(got).toBeUndefined();
              continue;
            }
            expect({ key, via: save.via, ...got }).toEqual({ key, via: save.via, v: expected.value, modify: expected.index });
          }
        }
      }),
    60_000,
  );
});
