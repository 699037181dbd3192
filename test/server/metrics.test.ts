// Metrics series: labels name one series whatever order they are given in, and both
// renderings (JSON, Prometheus text) show each series once with its labels.
import { describe, expect, test } from "bun:test";
import { Metrics } from "../../src/server/metrics.ts";

describe("metrics", () => {
  test("label order does not split a series; distinct labels do", () => {
    const m = new Metrics();
    m.inc("reqs_total", { route: "/v1/var", method: "PUT", status: "200" });
    m.inc("reqs_total", { status: "200", method: "PUT", route: "/v1/var" }, 2);
    m.inc("reqs_total", { method: "PUT", route: "/v1/var", status: "409" });
    m.inc("plain_total");
    m.inc("plain_total", {}, 4);
    m.observe("lat_ms", 3, { b: "2", a: "1" });
    m.observe("lat_ms", 30, { a: "1", b: "2" });
    const j = m.json() as {
      Counters: { Name: string; Count: number; Labels: Record<string, string> }[];
      Samples: { Name: string; Count: number; Sum: number }[];
    };
    const reqs = j.Counters.filter((c) => c.Name === "reqs_total");
    expect(reqs.map((c) => [c.Labels.status, c.Count])).toEqual([
      ["200", 3],
      ["409", 1],
    ]);
    expect(j.Counters.find((c) => c.Name === "plain_total")?.Count).toBe(5);
    expect(j.Samples).toHaveLength(1);
    expect(j.Samples[0]).toMatchObject({ Name: "lat_ms", Count: 2, Sum: 33 });
    const text = m.prometheus();
    expect(text).toContain('reqs_total{method="PUT",route="/v1/var",status="200"} 3\n');
    expect(text).toContain('reqs_total{method="PUT",route="/v1/var",status="409"} 1\n');
    expect(text).toContain("plain_total 5\n");
    expect(text).toContain('lat_ms_bucket{a="1",b="2",le="5"} 1\n');
    expect(text).toContain('lat_ms_count{a="1",b="2"} 2\n');
  });
});
