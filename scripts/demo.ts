/**
 * npm run demo: a local Pebble CA, the webroot and the manager on loopback ports, issuing certificates
 * for a few demo names into ./demo-data. Ctrl-C stops everything. `-- --exit` stops once they are issued.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
// @ts-expect-error plain ESM helper shared with the test runner
import { ensureDebianTools } from './debian-tools.mjs';
import { startPebble } from '../test/support/pebble.js';
import { freePort } from '../test/support/ports.js';
import { parseCert } from '../src/certs/parse.js';

const DOMAINS = 'demo.example.com,www.demo.example.com;api.demo.example.com';
const NAMES = ['demo.example.com', 'api.demo.example.com'];

if (!ensureDebianTools([{ command: 'pebble', pkg: 'pebble' }, { command: 'pebble-challtestsrv', pkg: 'pebble' }])) process.exit(1);

const root = resolve('demo-data');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const httpPort = await freePort();
const pebble = await startPebble({ dir: join(root, 'pebble'), httpPort });
const env = {
  ...process.env,
  DOMAINS,
  STAGING: 'false',
  ACME_DIRECTORY_URL: pebble.directoryUrl,
  ACME_CA_BUNDLE: pebble.caBundlePath,
  DATA_DIR: join(root, 'data'),
  CERTS_DIR: join(root, 'live'),
  WEBROOT_DIR: join(root, 'webroot'),
  PORT: String(httpPort),
};
const children: ChildProcess[] = [];
const run = (cmd: string) => {
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', cmd], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(p);
};
console.log(`Pebble ACME directory: ${pebble.directoryUrl}\nwebroot on 127.0.0.1:${httpPort} (Pebble validates HTTP-01 there)\n`);
run('webroot');
run('manager');

const stop = async (code: number) => {
  for (const c of children) c.kill('SIGTERM');
  await pebble.stop();
  process.exit(code);
};
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const issued = (n: string) => {
  const f = join(root, 'live', n, 'cert.pem');
  return existsSync(f) && !parseCert(readFileSync(f, 'utf8')).selfSigned;
};
const deadline = Date.now() + 120_000;
while (!NAMES.every(issued)) {
  if (Date.now() > deadline) {
    console.error('demo: certificates were not issued within 2 minutes; see the log above');
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 300));
}
console.log(`\nIssued by the local Pebble CA:`);
for (const n of NAMES) {
  const info = parseCert(readFileSync(join(root, 'live', n, 'cert.pem'), 'utf8'));
  console.log(`  ${join('demo-data', 'live', n)}/  names: ${info.names.join(', ')}  expires: ${info.notAfter.toISOString()}`);
}
console.log(`\nInspect one:  openssl x509 -in demo-data/live/demo.example.com/cert.pem -noout -subject -issuer -ext subjectAltName -dates`);
console.log(`Plan view:    DATA_DIR=demo-data/data CERTS_DIR=demo-data/live DOMAINS='${DOMAINS}' STAGING=false ACME_DIRECTORY_URL=${pebble.directoryUrl} npx certwrangler plan`);
if (process.argv.includes('--exit')) await stop(0);
console.log('\nThe manager keeps running (it would renew on its schedule). Ctrl-C stops everything.');
