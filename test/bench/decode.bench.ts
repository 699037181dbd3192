// The strict decoder against the bare cbor-x decoder it wraps: what the check costs on the values the
// project decodes most (snapshot record blocks, RPC request headers, raft appends), and what a 192 KiB
// bignum costs each of them. Run: bun test/bench/decode.bench.ts  (BENCH_BIGNUM_KIB, 0 skips the bare one)
import { Decoder } from "cbor-x";
import { decode, decodeMultiple, encode } from "../../src/lib/codec.ts";

const bare = new Decoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
const bareCopying = new Decoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true, copyBuffers: true });
const RUNS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function perSecond(n: number, f: () => void): number {
  return median(
    Array.from({ length: RUNS }, () => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f();
      return (n / (performance.now() - t0)) * 1000;
    }),
  );
}

const block = Buffer.concat(
  Array.from({ length: 256 }, (_, i) =>
    encode({
      t: "vars",
      v: {
        Path: `app/svc-${String(i).padStart(8, "0")}/config`,
        Items: { host: "10.0.0.1", port: "8080", blob: "x".repeat(900) },
        CreateIndex: i + 1,
        ModifyIndex: i + 1,
        CreateTime: 1,
        ModifyTime: 1,
      },
    }),
  ),
);
const header = encode({
  Method: "Var.Put",
  Region: "global",
  AuthToken: "6f1c0f0e-6a7e-4d59-9a43-5bd3f0e0a0c1",
  Args: { path: "app/a", items: { k: "v" }, cas: 3 },
  Timeout: 5000,
});
const append = encode({
  type: 3,
  from: 1,
  to: 2,
  term: 7,
  index: 100,
  logTerm: 7,
  commit: 99,
  entries: Array.from({ length: 64 }, (_, i) => ({ index: 101 + i, term: 7, type: 0, data: new Uint8Array(200).fill(i) })),
});

const rows: [string, string, string, string][] = [];
const row = (what: string, n: number, strict: () => void, plain: () => void) => {
  // Warm both up first, then alternate, so neither is measured cold or always second.
  perSecond(n, strict);
  perSecond(n, plain);
  const ss: number[] = [];
  const ps: number[] = [];
  for (let i = 0; i < 3; i++) {
    ss.push(perSecond(n, strict));
    ps.push(perSecond(n, plain));
  }
  const s = median(ss);
  const p = median(ps);
  rows.push([
    what,
    `${Math.round(s).toLocaleString("en-US")}/s`,
    `${Math.round(p).toLocaleString("en-US")}/s`,
    `${(((p - s) / p) * 100).toFixed(1)}%`,
  ]);
};
row(
  `snapshot block (256 records, ${block.length} B)`,
  200,
  () => decodeMultiple(block),
  () => bareCopying.decodeMultiple(block),
);
row(
  `rpc request header (${header.length} B)`,
  200_000,
  () => decode(header),
  () => bare.decode(header),
);
row(
  `raft append, 64 entries (${append.length} B)`,
  20_000,
  () => decode(append),
  () => bare.decode(append),
);

console.log("| input | strict | bare cbor-x | strict costs |\n|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);

const kib = Number(process.env.BENCH_BIGNUM_KIB ?? 192);
const n = 192 * 1024;
const bignum = new Uint8Array(6 + n);
bignum.set([0xc2, 0x5a]);
new DataView(bignum.buffer).setUint32(2, n);
bignum.fill(0xff, 6);
let t0 = performance.now();
let outcome = "decoded";
try {
  decode(bignum);
} catch (e) {
  outcome = (e as Error).message;
}
console.log(`\n192 KiB bignum (tag 2), strict: ${(performance.now() - t0).toFixed(2)} ms, ${outcome}`);
if (kib > 0) {
  const m = kib * 1024;
  const b = new Uint8Array(6 + m);
  b.set([0xc2, 0x5a]);
  new DataView(b.buffer).setUint32(2, m);
  b.fill(0xff, 6);
  t0 = performance.now();
  bare.decode(b);
  console.log(`${kib} KiB bignum (tag 2), bare cbor-x: ${(performance.now() - t0).toFixed(0)} ms of the event loop`);
}
