// Manager passes from the built code in one process, as a running manager makes them: the first pass
// (cold: every file read and parsed) and the next ones (warm). Reports wall time per pass, peak RSS and
// ACME requests as one JSON line. Run by bench/steady.ts as a child so the figures are the manager's alone.
// BENCH_PROFILE_DIR (bench/steady-profile.ts): the first pass's CPU profile goes to cold.cpuprofile and the
// later passes' to warm.cpuprofile, and the heap left after the last pass is measured after a full GC.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
// The manager as the image runs it: dist/bench/pass.js, bundled by scripts/bundle.mjs with the CLI's lazy loading.
// BENCH_MODULES=1: tsc's one file per module instead (every adapter loaded; about 37 MB more RSS at start).
// The heap is set up as the image sets it up: tuneHeap here (src/launch.ts calls it), and the Dockerfile's
// NODE_OPTIONS, which bench/steady.ts gives this process. A build from before tuneHeap existed has none.
const { loadConfig, createLogger, assemble, runPass, countAcmeRequests, tuneHeap } =
  process.env.BENCH_MODULES === '1'
    ? {
        ...(await import('../dist/heap.js').catch(() => ({}))),
        ...(await import('../dist/config.js')),
        ...(await import('../dist/log.js')),
        ...(await import('../dist/assemble.js')),
        ...(await import('../dist/reconciler.js')),
        ...(await import('../dist/acme/transport.js')),
      }
    : await import('../dist/bench/pass.js');

const passes = Number(process.env.BENCH_PASSES ?? 3);
const profileDir = process.env.BENCH_PROFILE_DIR;
const session = profileDir ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
}
const profile = async (name, fn) => {
  if (!session) return fn();
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile: p } = await session.post('Profiler.stop');
    writeFileSync(join(profileDir, `${name}.cpuprofile`), JSON.stringify(p));
  }
};
tuneHeap?.();
const deps = await assemble(loadConfig(), createLogger('warn'));
// What the process holds before its first pass: the program and its parts, no certificate yet.
const startRssMb = process.memoryUsage().rss / 1048576;
const acme = countAcmeRequests();
// BENCH_SAMPLE_MEMORY=1: process.memoryUsage() every 5 ms, and each pass's peaks (MB) on stderr at the end: which of
// the heap, its garbage or the buffers outside it (arrayBuffers: the orchestrator's pages) make the peak RSS.
const peaks = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sampler = process.env.BENCH_SAMPLE_MEMORY === '1' ? setInterval(() => { const m = process.memoryUsage(); for (const k of Object.keys(peaks)) peaks[k] = Math.max(peaks[k], m[k] / 1048576); }, 5) : undefined;
const passPeaks = [];
const wallMs = [];
// CPU of the process per pass (user + system): on a shared machine it moves far less with the load than wall time.
const cpuMs = [];
const reasons = {};
let ok = true;
const pass = async (i) => {
  const t = performance.now();
  const c = process.cpuUsage();
  const report = await runPass(deps);
  wallMs.push(performance.now() - t);
  const used = process.cpuUsage(c);
  cpuMs.push((used.user + used.system) / 1000);
  ok &&= report.ok;
  if (sampler) {
    passPeaks.push(Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, Math.round(v)])));
    for (const k of Object.keys(peaks)) peaks[k] = 0;
  }
  if (i === 0) for (const r of report.results) reasons[r.decision.reason] = (reasons[r.decision.reason] ?? 0) + 1;
};
await profile('cold', () => pass(0));
await profile('warm', async () => {
  for (let i = 1; i < passes; i++) await pass(i);
});
acme.stop();
if (sampler) {
  clearInterval(sampler);
  console.error(JSON.stringify(passPeaks));
}
const rssAfterMb = process.memoryUsage().rss / 1048576;
globalThis.gc?.();
const heapAfterMb = process.memoryUsage().heapUsed / 1048576;
console.log(JSON.stringify({ wallMs, cpuMs, startRssMb, maxRssKb: process.resourceUsage().maxRSS, rssAfterMb, heapAfterMb, acmeRequests: [...acme.counts.values()].reduce((a, b) => a + b, 0), reasons, ok }));
process.exit(0);
