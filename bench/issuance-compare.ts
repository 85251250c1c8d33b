/**
 * A/B of the 1 × 10 issuance (RSA-2048, `manager --once` from exec to exit, the files orchestrator), interleaved
 * run by run against one Pebble and one webroot, so that two builds (and certbot) meet the same load:
 *
 *   node --import tsx bench/issuance-compare.ts [runs=5] <label>=<path to cli.js> … [--certbot]
 *
 * e.g. a copy of main's dist beside this tree's: `base=/tmp/cwbase/dist/cli.js new=dist/cli.js --certbot`.
 * Prints the median wall and CPU (the process and its children, from bash's `time`) of each subject.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { issuanceLab } from './issuance-lab.js';
import { median, timed, type Timing } from './lib.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
const clis = args.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), resolve(a.slice(a.indexOf('=') + 1))] as const);
const withCertbot = args.includes('--certbot');
if (clis.length === 0) throw new Error('usage: issuance-compare.ts [runs] label=path/to/cli.js … [--certbot]');

const base = join(tmpdir(), `cw-issuance-compare-${process.pid}`);
const { webroot, server, pebble } = await issuanceLab(base);
const env = { ...process.env, REQUESTS_CA_BUNDLE: pebble.caBundlePath };
let seq = 0;
const names = () => Array.from({ length: 10 }, (_, i) => `n${i}.r${++seq}.bench-example.com`);
const subjects: [string, (dir: string) => string][] = clis.map(([label, cli]) => [
  label,
  (dir: string) =>
    [
      `DOMAINS='${names().join(',')}' KEY_TYPE=rsa-2048 STAGING=false ACME_DIRECTORY_URL=${pebble.directoryUrl} ACME_CA_BUNDLE=${pebble.caBundlePath}`,
      `DATA_DIR=${dir}/data CERTS_DIR=${dir}/live WEBROOT_DIR=${webroot} LOG_LEVEL=warn ORCHESTRATOR=files node ${cli} manager --once`,
    ].join(' '),
]);
if (withCertbot) {
  subjects.push([
    'certbot',
    (dir) =>
      `certbot certonly --non-interactive --agree-tos -m bench@example.com --server ${pebble.directoryUrl} --config-dir ${dir}/etc --work-dir ${dir}/work --logs-dir ${dir}/logs --key-type rsa --rsa-key-size 2048 --webroot -w ${webroot} ${names().map((n) => `-d ${n}`).join(' ')}`,
  ]);
}
const samples = new Map<string, Timing[]>();
try {
  for (let run = -1; run < runs; run++) {
    for (const [label, command] of subjects) {
      const t = await timed(command(join(base, `${label}-${run + 1}`)), env);
      if (t.code !== 0) throw new Error(`${label} failed:\n${t.output.slice(-3000)}`);
      // The first round fills the page cache and is not counted.
      if (run >= 0) samples.set(label, [...(samples.get(label) ?? []), t]);
    }
  }
  const rows = [...samples].map(([label, ts]) => ({ subject: label, 'wall (median)': Math.round(median(ts.map((t) => t.wallMs))), 'CPU (median)': Math.round(median(ts.map((t) => t.cpuMs))), walls: ts.map((t) => Math.round(t.wallMs)).join(' ') }));
  console.table(rows);
  const cb = samples.get('certbot');
  if (cb) for (const [label, ts] of samples) if (label !== 'certbot') console.log(`${label}: 1/${(median(cb.map((t) => t.wallMs)) / median(ts.map((t) => t.wallMs))).toFixed(2)} of certbot`);
} finally {
  await pebble.stop();
  server.close();
  rmSync(base, { recursive: true, force: true });
}
