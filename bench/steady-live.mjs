// What the manager holds between passes (issue 22): after a cold and a warm pass and a full GC, a heap snapshot
// summed by constructor (objects) or type (strings, arrays, numbers), as one JSON line. Run as steady-alloc.mjs is.
import v8 from 'node:v8';
const { loadConfig, createLogger, assemble, runPass, tuneHeap } = await import('../dist/bench/pass.js');
tuneHeap?.();
const deps = await assemble(loadConfig(), createLogger('warn'));
await runPass(deps);
await runPass(deps);
// BENCH_SNAPSHOT_AT=<ms>: the snapshot is taken that long into a third pass instead (what a pass holds in flight).
const at = process.env.BENCH_SNAPSHOT_AT;
const take = () => {
  globalThis.gc();
  return v8.writeHeapSnapshot(`/tmp/steady-live-${process.pid}.heapsnapshot`);
};
let file;
if (at) {
  const third = runPass(deps);
  await new Promise((r) => setTimeout(r, Number(at)));
  file = take();
  await third;
} else file = take();
const { readFileSync, rmSync } = await import('node:fs');
const chunks = [readFileSync(file)];
rmSync(file);
const snap = JSON.parse(Buffer.concat(chunks).toString());
const f = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const [ti, ni, si] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
const sums = new Map();
const nodes = snap.nodes;
for (let i = 0; i < nodes.length; i += f.length) {
  const type = types[nodes[i + ti]];
  const key = type === 'object' || type === 'closure' ? `${type} ${snap.strings[nodes[i + ni]]}` : type;
  const s = sums.get(key) ?? [0, 0];
  s[0] += nodes[i + si];
  s[1]++;
  sums.set(key, s);
}
const shapes = new Map();
const si2 = snap.strings;
for (let i = 0; i < nodes.length; i += f.length) {
  const type = types[nodes[i + ti]];
  if (type !== 'string' && type !== 'concatenated string' && type !== 'sliced string') continue;
  const str = si2[nodes[i + ni]] ?? '';
  const k = type[0] + ':' + str.slice(0, 24).replace(/[0-9]/g, '9').replace(/[a-f9]{8,}/g, 'H') + ' len' + (str.length < 100 ? Math.round(str.length / 10) * 10 : 'big');
  const s = shapes.get(k) ?? [0, 0];
  s[0] += nodes[i + si]; s[1]++; shapes.set(k, s);
}
console.log([...shapes].sort((a, b) => b[1][0] - a[1][0]).slice(0, 40).map(([k, [v, c]]) => `${(v / 1048576).toFixed(2)} MB ${c} ${JSON.stringify(k)}`).join('\n'));
// Who holds what: each node's first retainer (its property name and the retainer's own name), summed.
const ef = snap.snapshot.meta.edge_fields;
const etypes = snap.snapshot.meta.edge_types[0];
const [eti, eni, eto] = [ef.indexOf('type'), ef.indexOf('name_or_index'), ef.indexOf('to_node')];
const ecount = f.indexOf('edge_count');
const retainer = new Int32Array(nodes.length / f.length).fill(-1);
const via = new Array(nodes.length / f.length);
for (let i = 0, e = 0; i < nodes.length; i += f.length) {
  for (let k = 0; k < nodes[i + ecount]; k++, e += ef.length) {
    const to = snap.edges[e + eto] / f.length;
    const et = etypes[snap.edges[e + eti]];
    if (et === 'weak' || et === 'shortcut') continue;
    if (retainer[to] === -1) {
      retainer[to] = i / f.length;
      via[to] = et === 'element' || et === 'hidden' ? `[${et}]` : snap.strings[snap.edges[e + eni]];
    }
  }
}
const held = new Map();
for (let j = 0; j < retainer.length; j++) {
  const i = j * f.length;
  const type = types[nodes[i + ti]];
  if (type === 'code' || type === 'hidden' || type === 'object shape') continue;
  const r = retainer[j];
  const rn = r < 0 ? '-' : `${types[nodes[r * f.length + ti]]}:${String(snap.strings[nodes[r * f.length + ni]]).slice(0, 30)}`;
  const k = `${type}:${type === 'object' ? snap.strings[nodes[i + ni]] : ''} via .${via[j]} of ${rn}`;
  const s = held.get(k) ?? [0, 0];
  s[0] += nodes[i + si]; s[1]++; held.set(k, s);
}
console.log([...held].sort((a, b) => b[1][0] - a[1][0]).slice(0, 45).map(([k, [v, c]]) => `${(v / 1048576).toFixed(2)} MB ${c} ${k}`).join('\n'));
const chain = (j) => { const out = []; for (let d = 0; d < 14 && j >= 0; d++) { const i = j * f.length; out.push(`${types[nodes[i + ti]]}:${String(snap.strings[nodes[i + ni]]).slice(0, 40)} .${via[j]}`); j = retainer[j]; } return out.join(' <- '); };
for (const want of ['decision', 'c', 'renewAt', 'sources', 'since', 'self']) {
  const j = via.findIndex((v, k) => v === want && types[nodes[k * f.length + ti]] !== 'string' || (v === want && want === 'since') || (v === want && want === 'self'));
  if (j >= 0) console.log(`${want}: ${chain(j)}`);
}
const total = [...sums.values()].reduce((a, b) => a + b[0], 0);
console.log(JSON.stringify({ totalMb: total / 1048576, top: [...sums].sort((a, b) => b[1][0] - a[1][0]).slice(0, 30).map(([k, [v, c]]) => `${(v / 1048576).toFixed(2)} MB ${c} ${k}`) }));
process.exit(0);
