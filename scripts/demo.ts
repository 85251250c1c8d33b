/**
 * npm run demo: a local Pebble CA, the webroot and the manager on loopback ports, issuing certificates
 * for a few demo names into ./demo-data. Ctrl-C stops everything. `-- --exit` stops once they are issued.
 * `-- --rancher`: the manager pushes into the in-process Rancher API simulator instead, reads one
 * certificate from a service label, and the demo prints what the HTTPS balancer now serves.
 * Every port is a free loopback port (the webroot, the status endpoint, Pebble), so it runs beside another
 * certwrangler; if the webroot or the manager exits, the demo stops everything and exits with its error.
 * DEMO_DIR (default ./demo-data) is where it writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
// @ts-expect-error plain ESM helper shared with the test runner
import { ensureDebianTools } from './debian-tools.mjs';
import { startPebble } from '../test/support/pebble.js';
import { freePort } from '../test/support/ports.js';
import { parseCert } from '../src/certs/parse.js';
import { startRancherSim, type RancherSim } from '../test/support/rancher-sim.js';

const DOMAINS = 'demo.example.com,www.demo.example.com;api.demo.example.com';
const NAMES = ['demo.example.com', 'api.demo.example.com'];
const RANCHER = process.argv.includes('--rancher');
const LABELLED = 'shop.demo.example.com';

if (!ensureDebianTools([{ command: 'pebble', pkg: 'pebble' }, { command: 'pebble-challtestsrv', pkg: 'pebble' }])) process.exit(1);

const root = resolve(process.env.DEMO_DIR ?? 'demo-data');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const [httpPort, statusPort] = await Promise.all([freePort(), freePort()]);
const pebble = await startPebble({ dir: join(root, 'pebble'), httpPort });
let sim: RancherSim | undefined;
if (RANCHER) {
  sim = await startRancherSim();
  sim.addService({ name: 'shop', labels: { 'com.danieldent.rancher-lets-encrypt.hosts': `${LABELLED},www.${LABELLED}` } });
  // As a rancher-compose balancer with `default_cert: demo.example.com` and `certs: [...]` would.
  sim.addBalancer({ name: 'https-lb', defaultCertificateName: 'demo.example.com', certificateNames: ['api.demo.example.com', LABELLED] });
  NAMES.push(LABELLED);
}
const rancherEnv = sim ? { ...sim.env, DISCOVERY_INTERVAL: '5s' } : {};
const env = {
  ...process.env,
  ...rancherEnv,
  DOMAINS,
  STAGING: 'false',
  ACME_DIRECTORY_URL: pebble.directoryUrl,
  ACME_CA_BUNDLE: pebble.caBundlePath,
  DATA_DIR: join(root, 'data'),
  CERTS_DIR: join(root, 'live'),
  WEBROOT_DIR: join(root, 'webroot'),
  PORT: String(httpPort),
  STATUS_ADDR: `127.0.0.1:${statusPort}`,
};
const children: ChildProcess[] = [];
let stopping = false;
const stop = async (code: number) => {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  await pebble.stop();
  await sim?.close();
  process.exit(code);
};
const run = (cmd: string) => {
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', cmd], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(p);
  // A child that dies leaves nothing to wait for: stop, with its error (printed above by the child itself).
  p.once('exit', (code, signal) => {
    if (stopping) return;
    console.error(`demo: certwrangler ${cmd} exited (${signal ?? `code ${code}`}); its error is above. Stopping.`);
    void stop(1);
  });
};
console.log(`Pebble ACME directory: ${pebble.directoryUrl}\nwebroot on 127.0.0.1:${httpPort} (Pebble validates HTTP-01 there)\nstatus page on http://127.0.0.1:${statusPort}/\n`);
run('webroot');
run('manager');

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const livePem = (n: string): string | undefined => {
  if (sim) {
    const c = sim.certByName(n);
    return c && c.state === 'active' ? c.cert : undefined;
  }
  const f = join(root, 'live', n, 'cert.pem');
  return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
};
const issued = (n: string) => {
  const pem = livePem(n);
  return pem !== undefined && !parseCert(pem).selfSigned;
};
const deadline = Date.now() + 120_000;
while (!NAMES.every(issued)) {
  if (Date.now() > deadline) {
    console.error('demo: certificates were not issued within 2 minutes; see the log above');
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 300));
}
if (sim) {
  // Give the balancer update that follows the last push a moment to land.
  await new Promise((r) => setTimeout(r, 500));
  console.log(`\nRancher (simulated) now holds:`);
  for (const n of NAMES) {
    const c = sim.certByName(n)!;
    const info = parseCert(c.cert);
    console.log(`  certificate ${n} (${c.id}), ${c.state}  names: ${info.names.join(', ')}  expires: ${info.notAfter.toISOString()}  "${c.description}"`);
  }
  for (const lb of [...sim.services.values()].filter((s) => s.lbConfig)) {
    console.log(`\nBalancer ${lb.name} (${lb.id}) reloaded ${lb.reloadCount} times; it now serves:`);
    for (const [id, pem] of lb.served) {
      const info = parseCert(pem);
      console.log(`  ${id}  ${info.names.join(', ')}  issuer: ${info.issuer}${info.selfSigned ? '  (self-signed placeholder)' : ''}  expires: ${info.notAfter.toISOString()}`);
    }
  }
  console.log(`\nPlan view:    CATTLE_URL=${sim.url} CATTLE_ACCESS_KEY=${sim.accessKey} CATTLE_SECRET_KEY=… DATA_DIR=demo-data/data DOMAINS='${DOMAINS}' STAGING=false ACME_DIRECTORY_URL=${pebble.directoryUrl} ACME_CA_BUNDLE=${pebble.caBundlePath} npx certwrangler plan`);
} else {
  console.log(`\nIssued by the local Pebble CA:`);
  for (const n of NAMES) {
    const info = parseCert(readFileSync(join(root, 'live', n, 'cert.pem'), 'utf8'));
    console.log(`  ${join('demo-data', 'live', n)}/  names: ${info.names.join(', ')}  expires: ${info.notAfter.toISOString()}`);
  }
  console.log(`\nInspect one:  openssl x509 -in demo-data/live/demo.example.com/cert.pem -noout -subject -issuer -ext subjectAltName -dates`);
  console.log(`Plan view:    DATA_DIR=demo-data/data CERTS_DIR=demo-data/live DOMAINS='${DOMAINS}' STAGING=false ACME_DIRECTORY_URL=${pebble.directoryUrl} npx certwrangler plan`);
}
if (process.argv.includes('--exit')) await stop(0);
console.log('\nThe manager keeps running (it would renew on its schedule). Ctrl-C stops everything.');
