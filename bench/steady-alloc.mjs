// Where a warm pass allocates (issue 22): the manager's passes as bench/steady-pass.mjs makes them, with V8's
// sampling heap profiler running over one warm pass and keeping the objects collected during it, so the figures
// are what the pass allocated, not what survived it. Run as bench/steady-pass.mjs is (bench/steady-profile.ts's
// environment); prints the top allocation sites by bytes as one JSON line.
import { Session } from 'node:inspector/promises';
const { loadConfig, createLogger, assemble, runPass, tuneHeap } = await import('../dist/bench/pass.js');
tuneHeap?.();
const deps = await assemble(loadConfig(), createLogger('warn'));
await runPass(deps);
await runPass(deps);
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.BENCH_MINOR !== '0' });
await runPass(deps);
const { profile } = await session.post('HeapProfiler.stopSampling');
const self = new Map();
const where = (f) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\/.*?\/(dist|node_modules|bench)\//, '$1/')}:${f.lineNumber + 1}`;
const walk = (n, stack) => {
  const w = where(n.callFrame);
  self.set(w, (self.get(w) ?? 0) + n.selfSize);
  n.children.forEach((c) => walk(c, stack));
};
walk(profile.head, []);
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ totalMb: total / 1048576, top: [...self].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([k, v]) => `${(v / 1048576).toFixed(2)} MB ${k}`) }));
process.exit(0);
