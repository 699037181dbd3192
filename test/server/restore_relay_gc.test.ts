// The relay's forced collections (relay_collections.ts): full ones within RELAY_GC_CPU_SHARE
// of the relay's time in CPU, the next one counted at the last one's cost, so a heap whose every full
// collection is dear (a server holding a large state) gets few, and a cheap one as many as its RSS asks
// for; eden ones are counted apart and do not use the budget.
import { describe, expect, test } from "bun:test";
import { RELAY_GC_CPU_SHARE, RelayCollections } from "../../src/server/relay_collections.ts";

/** A collector costing `ms` of CPU on a fake clock. */
function fake(ms: number) {
  let cpu = 0;
  return {
    gc: {
      full: () => {
        cpu += ms;
      },
      eden: () => {
        cpu += 1;
      },
    },
    cpu: () => cpu,
  };
}

describe("relay collections budget", () => {
  test("cheap collections (a small heap) are all allowed at the relay's pace", () => {
    const f = fake(15);
    const c = new RelayCollections(0, f.gc, f.cpu);
    // One check a second for 20 s: 15 ms each is far within 5% of the time.
    for (let t = 1000; t <= 20_000; t += 1000) {
      expect(c.affordable(t)).toBe(true);
      c.collect();
    }
    expect(c.count).toBe(20);
    expect(c.declined).toBe(0);
    expect(c.cpuMs).toBe(300);
  });

  test("dear collections (a large heap) are held to the share of the time, the first one included in the total", () => {
    const f = fake(700);
    const c = new RelayCollections(0, f.gc, f.cpu);
    // A check every 50 ms of a 60 s upload, each wanting a collection (the RSS grew past the slack):
    // the first at once, then each when the total with it fits 5% of the time (28, 42, 56 s).
    for (let t = 50; t <= 60_000; t += 50) if (c.affordable(t)) c.collect();
    expect(c.count).toBe(4);
    expect(c.declined).toBe(1200 - 4);
    // At most the share of the time, plus the first (taken before any cost is known).
    expect(c.cpuMs).toBeLessThanOrEqual(RELAY_GC_CPU_SHARE * 60_000 + 700);
  });

  test("a collection is only allowed once its predecessor's cost fits the time so far", () => {
    const f = fake(100);
    const c = new RelayCollections(1000, f.gc, f.cpu);
    expect(c.affordable(1000)).toBe(true);
    c.collect();
    // 100 ms spent; the next at 100 ms more needs 200 / 0.05 = 4 s since the start.
    expect(c.affordable(1000 + 3999)).toBe(false);
    expect(c.affordable(1000 + 4000)).toBe(true);
  });

  test("eden collections are counted apart and leave the full ones' budget alone", () => {
    const f = fake(100);
    const c = new RelayCollections(0, f.gc, f.cpu);
    for (let i = 0; i < 50; i++) c.young();
    expect(c.eden).toBe(50);
    expect(c.edenCpuMs).toBe(50);
    expect(c.cpuMs).toBe(0);
    expect(c.affordable(0)).toBe(true);
  });
});
