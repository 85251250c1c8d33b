/**
 * Where the time of the 1 × 10 issuance goes after start-up (issue 22, BENCHMARKS.md "Not reached yet"): one
 * manager pass made in this process against a local Pebble (PEBBLE_VA_NOSLEEP=1), as `manager --once` makes it
 * once its modules are loaded, with every ACME request's start and length, the pass's CPU, and the work the pass
 * does between requests. Start-up itself is measured by the start-up rows (bench/startup.ts).
 *
 *   node --import tsx bench/issuance-profile.ts [runs=5] [--no-placeholder]
 *
 * Prints one table of medians over the runs: each kind of ACME request (how many, their summed time, when the
 * first started and the last ended, from the pass's start), the time no request was in flight, the pass's wall
 * and CPU, and an RSA-2048 key made alone for comparison.
 *
 * The passes share one process, so every pass after the first reuses the placeholder key the first one made
 * (src/certs/placeholder.ts shares it within a process), which a `manager --once` makes at every start: for the
 * whole command, from exec to exit, beside certbot, see bench/issuance-compare.ts.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { issuanceLab } from './issuance-lab.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { assemble } from '../src/assemble.js';
import { runPass } from '../src/reconciler.js';
import { observeAcmeRequests } from '../src/acme/transport.js';
import { generatePrivateKey } from '../src/certs/keys.js';
import { median } from './lib.js';

const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 5);
const placeholders = !process.argv.includes('--no-placeholder');

/** Pebble's paths, named for the step of RFC 8555 each is. */
function stepOf(method: string, path: string): string {
  if (path === '/dir') return 'directory';
  if (path.startsWith('/nonce-plz')) return 'nonce';
  if (path.startsWith('/sign-me-up')) return 'new account';
  if (path.startsWith('/order-plz')) return 'new order';
  if (path.startsWith('/authZ/')) return 'authorization (POST-as-GET)';
  if (path.startsWith('/chalZ/')) return 'challenge (respond, poll)';
  if (path.startsWith('/finalize-order/')) return 'finalize';
  if (path.startsWith('/my-order/')) return 'order (poll)';
  if (path.startsWith('/certZ/')) return 'certificate download';
  return `${method} ${path.replace(/\/[A-Za-z0-9_-]{16,}/g, '/…')}`;
}

interface Span {
  step: string;
  start: number;
  end: number;
}

/** The time covered by at least one span, in ms (requests overlap: ten authorizations are asked for at once). */
function covered(spans: Span[]): number {
  let total = 0;
  let reach = -Infinity;
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const from = Math.max(s.start, reach);
    if (s.end > from) total += s.end - from;
    reach = Math.max(reach, s.end);
  }
  return total;
}

const base = join(tmpdir(), `cw-issuance-profile-${process.pid}`);
const { webroot, server, pebble } = await issuanceLab(base);

const rows = new Map<string, { count: number[]; sumMs: number[]; firstMs: number[]; lastMs: number[] }>();
const totals = { wallMs: [] as number[], cpuMs: [] as number[], inRequestsMs: [] as number[], betweenMs: [] as number[], assembleMs: [] as number[] };
try {
  for (let run = 0; run < runs; run++) {
    const dir = join(base, `run${run}`);
    const env = {
      DOMAINS: Array.from({ length: 10 }, (_, i) => `n${i}.p${run}.bench-example.com`).join(','),
      KEY_TYPE: 'rsa-2048',
      STAGING: 'false',
      ACME_DIRECTORY_URL: pebble.directoryUrl,
      ACME_CA_BUNDLE: pebble.caBundlePath,
      DATA_DIR: join(dir, 'data'),
      CERTS_DIR: join(dir, 'live'),
      WEBROOT_DIR: webroot,
      ORCHESTRATOR: 'files',
      PLACEHOLDERS: String(placeholders),
    };
    const a = performance.now();
    const deps = await assemble(loadConfig(env), createLogger('warn'));
    totals.assembleMs.push(performance.now() - a);
    const spans: Span[] = [];
    const stop = observeAcmeRequests((r) => {
      const end = performance.now();
      spans.push({ step: stepOf(r.method, new URL(r.url, 'http://x').pathname), start: end - r.seconds * 1000, end });
    });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const report = await runPass(deps);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    stop();
    if (!report.ok || report.results[0]?.issued !== true) throw new Error(`run ${run}: not issued: ${JSON.stringify(report.results.map((r) => r.error ?? r.outcome))}`);
    totals.wallMs.push(wall);
    totals.cpuMs.push((cpu.user + cpu.system) / 1000);
    const inRequests = covered(spans);
    totals.inRequestsMs.push(inRequests);
    totals.betweenMs.push(wall - inRequests);
    const byStep = new Map<string, Span[]>();
    for (const s of spans) byStep.set(s.step, [...(byStep.get(s.step) ?? []), s]);
    for (const [step, ss] of byStep) {
      const row = rows.get(step) ?? { count: [], sumMs: [], firstMs: [], lastMs: [] };
      row.count.push(ss.length);
      row.sumMs.push(ss.reduce((n, s) => n + s.end - s.start, 0));
      row.firstMs.push(Math.min(...ss.map((s) => s.start)) - t0);
      row.lastMs.push(Math.max(...ss.map((s) => s.end)) - t0);
      rows.set(step, row);
    }
  }
  const keyMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await generatePrivateKey('rsa-2048');
    keyMs.push(performance.now() - t);
  }
  const f = (ms: number[]) => `${Math.round(median(ms))} ms`;
  console.log(`issuance 1 × 10 names, RSA-2048, PLACEHOLDERS=${placeholders}: medians of ${runs} passes in one process (modules loaded)`);
  console.table(
    [...rows].sort((x, y) => median(x[1].firstMs) - median(y[1].firstMs)).map(([step, r]) => ({ step, requests: median(r.count), 'summed time': f(r.sumMs), 'first starts': f(r.firstMs), 'last ends': f(r.lastMs) })),
  );
  console.table({
    'the pass, wall': f(totals.wallMs),
    'the pass, CPU (this process; Pebble not counted)': f(totals.cpuMs),
    'at least one ACME request in flight': f(totals.inRequestsMs),
    'no ACME request in flight (local work: placeholder, keys, CSR, store, push)': f(totals.betweenMs),
    'assemble (configuration, store, account book), before the pass': f(totals.assembleMs),
    'an RSA-2048 key made alone': f(keyMs),
  });
} finally {
  await pebble.stop();
  server.close();
  rmSync(base, { recursive: true, force: true });
}
