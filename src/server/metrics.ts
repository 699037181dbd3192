// A small in-process metrics registry: counters, gauges and fixed-bucket
// histograms with labels, rendered as JSON or Prometheus text exposition.

type Labels = Record<string, string>;
const MAX_SERIES_PER_METRIC = 1000;

/** The series key: labels sorted by name. Runs several times per request, so no intermediate arrays beyond the key list. */
function key(labels: Labels): string {
  const ks = Object.keys(labels);
  if (ks.length === 0) return "";
  if (ks.length > 1) ks.sort();
  let out = "";
  for (let i = 0; i < ks.length; i++) {
    const k = ks[i] as string;
    out += i === 0 ? `${k}=${labels[k]}` : `,${k}=${labels[k]}`;
  }
  return out;
}
function promLabels(labels: Labels): string {
  const ks = Object.keys(labels).sort();
  if (ks.length === 0) return "";
  return `{${ks.map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, "_")}"`).join(",")}}`;
}

interface Series {
  labels: Labels;
  value: number;
}
interface HistSeries {
  labels: Labels;
  buckets: number[];
  sum: number;
  count: number;
}

export class Metrics {
  private counters = new Map<string, { help: string; series: Map<string, Series> }>();
  private gauges = new Map<string, { help: string; fn?: () => number; series: Map<string, Series> }>();
  private hists = new Map<string, { help: string; bounds: number[]; series: Map<string, HistSeries> }>();

  inc(name: string, labels: Labels = {}, by = 1, help = ""): void {
    let m = this.counters.get(name);
    if (!m) {
      m = { help, series: new Map() };
      this.counters.set(name, m);
    }
    const k = key(labels);
    const s = m.series.get(k);
    if (s) s.value += by;
    else if (m.series.size < MAX_SERIES_PER_METRIC) m.series.set(k, { labels, value: by });
  }

  set(name: string, value: number, labels: Labels = {}, help = ""): void {
    let m = this.gauges.get(name);
    if (!m) {
      m = { help, series: new Map() };
      this.gauges.set(name, m);
    }
    const k = key(labels);
    if (m.series.has(k) || m.series.size < MAX_SERIES_PER_METRIC) m.series.set(k, { labels, value });
  }

  /** A gauge read when rendered. */
  gauge(name: string, help: string, fn: () => number): void {
    this.gauges.set(name, { help, fn, series: new Map() });
  }

  deleteGauge(name: string, labels: Labels): void {
    this.gauges.get(name)?.series.delete(key(labels));
  }

  observe(
    name: string,
    value: number,
    labels: Labels = {},
    help = "",
    bounds = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
  ): void {
    let m = this.hists.get(name);
    if (!m) {
      m = { help, bounds, series: new Map() };
      this.hists.set(name, m);
    }
    const k = key(labels);
    let s = m.series.get(k);
    if (!s) {
      if (m.series.size >= MAX_SERIES_PER_METRIC) return;
      s = { labels, buckets: m.bounds.map(() => 0), sum: 0, count: 0 };
      m.series.set(k, s);
    }
    for (let i = 0; i < m.bounds.length; i++) if (value <= m.bounds[i]!) s.buckets[i]!++;
    s.sum += value;
    s.count++;
  }

  json(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const gauges: unknown[] = [];
    for (const [name, m] of this.gauges) {
      if (m.fn) gauges.push({ Name: name, Value: m.fn(), Labels: {} });
      for (const s of m.series.values()) gauges.push({ Name: name, Value: s.value, Labels: s.labels });
    }
    const counters: unknown[] = [];
    for (const [name, m] of this.counters)
      for (const s of m.series.values()) counters.push({ Name: name, Count: s.value, Labels: s.labels });
    const samples: unknown[] = [];
    for (const [name, m] of this.hists) {
      for (const s of m.series.values()) {
        samples.push({
          Name: name,
          Count: s.count,
          Sum: s.sum,
          Mean: s.count ? s.sum / s.count : 0,
          Buckets: Object.fromEntries(m.bounds.map((b, i) => [String(b), s.buckets[i]])),
          Labels: s.labels,
        });
      }
    }
    out.Timestamp = new Date().toISOString();
    out.Gauges = gauges;
    out.Counters = counters;
    out.Samples = samples;
    return out;
  }

  prometheus(): string {
    const lines: string[] = [];
    for (const [name, m] of this.gauges) {
      lines.push(`# HELP ${name} ${m.help || name}`, `# TYPE ${name} gauge`);
      if (m.fn) lines.push(`${name} ${m.fn()}`);
      for (const s of m.series.values()) lines.push(`${name}${promLabels(s.labels)} ${s.value}`);
    }
    for (const [name, m] of this.counters) {
      lines.push(`# HELP ${name} ${m.help || name}`, `# TYPE ${name} counter`);
      for (const s of m.series.values()) lines.push(`${name}${promLabels(s.labels)} ${s.value}`);
    }
    for (const [name, m] of this.hists) {
      lines.push(`# HELP ${name} ${m.help || name}`, `# TYPE ${name} histogram`);
      for (const s of m.series.values()) {
        for (const [i, b] of m.bounds.entries()) lines.push(`${name}_bucket${promLabels({ ...s.labels, le: String(b) })} ${s.buckets[i]}`);
        lines.push(`${name}_bucket${promLabels({ ...s.labels, le: "+Inf" })} ${s.count}`);
        lines.push(`${name}_sum${promLabels(s.labels)} ${s.sum}`, `${name}_count${promLabels(s.labels)} ${s.count}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
}
