/**
 * npm run bench: every benchmark, then one table. Not part of npm test; it takes several minutes
 * (lego and certbot dominate). `-- --quick` runs each once with smaller sizes, to check the scripts.
 * Results also go to bench/results.json; BENCHMARKS.md records the method and the latest figures.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain ESM helper shared with the test runner
import { ensureDebianTools, TEST_TOOLS } from '../scripts/debian-tools.mjs';
import { benchIssuance, type BenchKey, type IssuanceWorkload } from './issuance.js';
import { benchSteady } from './steady.js';
import { benchWebroot } from './webroot.js';
import { benchPlaceholders } from './placeholders.js';
import { benchRevocation } from './revocation.js';
import { benchStartup } from './startup.js';
import { machine, ms, printTable, removeTreeLater, type Row } from './lib.js';

const quick = process.argv.includes('--quick');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const want = (name: string) => only.length === 0 || only.includes(name);
const tools = [...TEST_TOOLS, { command: 'lego', pkg: 'lego' }, { command: 'certbot', pkg: 'certbot' }, { command: 'wrk', pkg: 'wrk' }];
if (!ensureDebianTools(tools)) process.exit(1);

const base = join(tmpdir(), `certwrangler-bench-${process.pid}`);
// State directories, keys and Pebble's data: a full run leaves over 200 MB otherwise (the steady bench removes
// each size's store as soon as that size is measured).
process.on('exit', () => removeTreeLater(base));
const runs = quick ? 1 : 3;
const rows: Row[] = [];
// Sections merge into the results file as each one finishes, so a long run that fails late keeps the rest.
const RESULTS = 'bench/results.json';
const results: Record<string, unknown> = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, unknown>) : {};
Object.assign(results, { date: new Date().toISOString(), machine: machine(), runs });
const save = () => writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);

if (want('issuance')) {
  // RSA-2048 is certwrangler's default; ECDSA P-256 is lego's and certbot's. Each case gives every tool the same key type.
  const cases: [IssuanceWorkload, BenchKey][] = [
    ['20 × 1 name', 'rsa-2048'],
    ['1 × 10 names', 'rsa-2048'],
    ['20 × 1 name', 'ecdsa-p256'],
  ];
  const r = await benchIssuance({ runs, tools: ['certwrangler', 'certwrangler-no-placeholder', 'lego', 'certbot'], base: join(base, 'issuance'), cases });
  results.issuance = r;
  save();
  for (const [workload, keyType] of cases) {
    const of = r.filter((x) => x.workload === workload && x.keyType === keyType);
    const ours = of.find((x) => x.tool === 'certwrangler')!;
    const isOurs = (tool: string) => tool.startsWith('certwrangler');
    const fastestPeer = Math.min(...of.filter((x) => !isOurs(x.tool)).map((x) => x.wallMs));
    for (const x of of) {
      const ratio = isOurs(x.tool) ? `1/${(fastestPeer / x.wallMs).toFixed(1)} of the fastest peer` : `${(x.wallMs / ours.wallMs).toFixed(1)}× certwrangler`;
      rows.push({ benchmark: `issuance, ${workload}, ${keyType === 'rsa-2048' ? 'RSA-2048' : 'ECDSA P-256'}`, subject: x.tool, value: `${ms(x.wallMs)} wall, ${ms(x.cpuMs)} CPU`, note: ratio });
    }
  }
}

if (want('steady')) {
  // --store=redis: the Redis store of issue 20, once bench/steady-fixtures.ts can write into it.
  const store = (process.argv.find((a) => a.startsWith('--store='))?.slice(8) ?? 'files') as 'files' | 'redis';
  // --steady-sizes=1000,100000: only those sizes (e.g. the 100,000 row alone, which takes minutes to set up).
  const asked = process.argv.find((a) => a.startsWith('--steady-sizes='))?.slice('--steady-sizes='.length);
  const sizes = asked ? asked.split(',').map(Number) : quick ? [100, 1000] : process.argv.includes('--no-100k') ? [100, 1000, 10_000] : [100, 1000, 10_000, 100_000];
  const r = await benchSteady({ sizes, runs, base: join(base, 'steady'), store });
  results.steady = r;
  save();
  for (const x of r) {
    rows.push({
      benchmark: `steady state, ${x.certificates} certificates (${x.store})`,
      subject: 'certwrangler',
      value: `${ms(x.wallMs)} per pass, ${ms(x.cpuMs)} CPU (first ${ms(x.coldMs)}, ${ms(x.coldCpuMs)} CPU), ${Math.round(x.maxRssMb)} MB RSS peak, ${Math.round(x.rssAfterWarmMb)} MB after the warm passes`,
      note: `${x.orchestratorRequests} Rancher requests (${x.certificatePages} certificate pages + ${x.orchestratorRequests - x.certificatePages}), ${x.acmeRequests} ACME; the simulator alone serves the list in ${ms(x.simListMs)}; load ${x.load[0].toFixed(1)}–${x.load[1].toFixed(1)}; fixtures ${ms(x.setupMs)}, row ${ms(x.rowMs)}, cleanup ${ms(x.cleanupMs)}`,
    });
  }
  // The cost of one more certificate, from the smallest size of 1,000 or more to the largest.
  const from = r.find((x) => x.certificates >= 1000);
  const to = r.at(-1);
  if (from && to && to.certificates > from.certificates) {
    const per = (a: number, b: number) => `${(((b - a) / (to.certificates - from.certificates)) * 1000).toFixed(1)} µs`;
    rows.push({
      benchmark: `steady state, cost of one more certificate (${from.certificates} → ${to.certificates})`,
      subject: 'certwrangler',
      value: `warm ${per(from.wallMs, to.wallMs)}, cold ${per(from.coldMs, to.coldMs)} a pass`,
      note: `${(((to.maxRssMb - from.maxRssMb) / (to.certificates - from.certificates)) * 1024).toFixed(2)} KB RSS each`,
    });
  }
}

if (want('webroot')) {
  const r = await benchWebroot({ runs, seconds: quick ? 2 : 5, base: join(base, 'webroot') });
  results.webroot = r;
  save();
  for (const workload of new Set(r.map((x) => x.workload))) {
    const nginx = r.find((x) => x.workload === workload && x.server === 'nginx')!;
    for (const x of r.filter((y) => y.workload === workload)) {
      rows.push({
        benchmark: `webroot, ${workload}`,
        subject: x.server,
        value: `${Math.round(x.rps)} req/s, p50 ${x.p50Ms.toFixed(2)} ms, p99 ${x.p99Ms.toFixed(2)} ms`,
        note: x.server === 'nginx' ? '' : `${(x.rps / nginx.rps).toFixed(2)}× nginx`,
      });
    }
  }
}

if (want('placeholders')) {
  const r = await benchPlaceholders({ names: 100, runs, base: join(base, 'placeholders') });
  results.placeholders = r;
  save();
  rows.push({ benchmark: `placeholders, ${r.names} new names`, subject: 'certwrangler', value: `first ${ms(r.firstMs)}, all ${ms(r.allMs)}`, note: 'from process start, pushed to the Rancher simulator' });
  const st = r.stages;
  rows.push({
    benchmark: `placeholders, ${r.names} new names: one push's stages`,
    subject: 'certwrangler',
    value: `start to first decision ${ms(st.startMs)}; then per placeholder: decision to stored (16 at a time) ${ms(st.makeAndStoreMs)}, stored to POST ${ms(st.queuedForWriteMs)}, POST to first settle check ${ms(st.settleMs)}, check to pushed ${ms(st.afterSettleMs)}`,
    note: 'medians over every placeholder',
  });
}

if (want('startup')) {
  const r = await benchStartup({ runs: quick ? 3 : 9, base: join(base, 'startup') });
  results.startup = r;
  save();
  const ours = r.find((x) => x.subject === 'certwrangler (bundle)')!;
  for (const x of r) {
    const what = x.subject.startsWith('certwrangler') ? '`manager --once`, files, no DOMAINS' : `\`${x.command}\``;
    rows.push({ benchmark: 'start-up, nothing to do', subject: x.subject, value: `${ms(x.wallMs)} wall, ${ms(x.cpuMs)} CPU, ${x.rssMb.toFixed(0)} MB RSS`, note: x === ours ? what : `${what}; ${(x.wallMs / ours.wallMs).toFixed(1)}× the bundle's wall time` });
  }
}

if (want('revocation')) {
  const r = await benchRevocation({ certificates: quick ? 100 : 1000, share: 0.3, runs: quick ? 1 : Math.min(runs, 2), base: join(base, 'revocation') });
  results.revocation = r;
  save();
  rows.push({ benchmark: `revocation drill, ${r.certificates} certificates, ${r.moved} windows moved`, subject: 'certwrangler', value: `${ms(r.replaceMs)} to replace all (${r.passes} pass${r.passes === 1 ? '' : 'es'}, at the next poll)`, note: `${r.ordersWithReplaces} of ${r.moved} orders with replaces` });
  rows.push({ benchmark: `ARI polling, ${r.certificates} certificates`, subject: 'certwrangler', value: `${r.ariRequestsPerPoll} renewalInfo requests per pass after Retry-After, ${r.ariRequestsWithinRetryAfter} before`, note: `a polling pass takes ${ms(r.pollPassMs)}` });
}

if (want('redis')) await (await import('./redis-run.js')).runRedisBench({ quick, runs, base, rows, results, save });
console.log(`\n${results.date as string} · ${results.machine as string} · medians of ${runs} run(s)\n`);
printTable(rows);
