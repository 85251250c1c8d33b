/**
 * The image, built from the repository's own Dockerfile by a real Docker daemon and run as an operator runs it.
 * Docker Hub cannot be reached here, so the base (BASE_IMAGE) is a stand-in made offline from this machine's
 * Node, npm, tini and busybox (importNodeBase). npm inside the build reaches the registry through this machine's
 * TLS interception, so the build gets the machine's CA bundle as the npm_cafile build secret; the test checks
 * that it is in no layer of the image. One build for the whole file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync, existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDocker, importNodeBase, buildImage, type DockerDaemon } from '../support/docker-daemon.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { freePort } from '../support/ports.js';
import { parseCert } from '../../src/certs/parse.js';

const TAG = 'certwrangler:test';
const NAMES = ['img.example.com', 'www.img.example.com'];
/** The uid of `node` in the official node images (and in the stand-in base). */
const NODE_UID = 1000;
/** How long a container may take to report healthy with --health-interval 1s; a loaded machine is slow. */
const HEALTHY_WITHIN_MS = 180_000;

let dir: string;
let daemon: DockerDaemon;
let pebble: Pebble;
let httpPort: number;
let buildLog = '';
let cafile: string | undefined;

/** The CA bundle npm on this machine uses (npm config, else NODE_EXTRA_CA_CERTS); undefined when none. */
function npmCafile(): string | undefined {
  const fromNpm = execFileSync('npm', ['config', 'get', 'cafile'], { encoding: 'utf8' }).trim();
  for (const f of [fromNpm, process.env.NODE_EXTRA_CA_CERTS]) if (f && f !== 'null' && f !== 'undefined' && existsSync(f)) return f;
  return undefined;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cw-image-'));
  daemon = await startDocker();
  const base = await importNodeBase(daemon);
  cafile = npmCafile();
  buildLog = await buildImage(daemon, {
    context: process.cwd(),
    tag: TAG,
    buildArgs: { BASE_IMAGE: base },
    ...(cafile ? { secrets: { npm_cafile: cafile } } : {}),
  });
  httpPort = await freePort();
  pebble = await startPebble({ dir: join(dir, 'pebble'), httpPort });
  for (const v of ['cw-webroot', 'cw-data']) await daemon.docker(['volume', 'create', v]);
});

after(async () => {
  await pebble?.stop();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const inspect = async (what: string, format: string) => (await daemon.docker(['inspect', '-f', format, what])).trim();

async function healthy(container: string): Promise<void> {
  const deadline = Date.now() + HEALTHY_WITHIN_MS;
  for (;;) {
    const status = await inspect(container, '{{.State.Health.Status}}');
    if (status === 'healthy') return;
    if (Date.now() > deadline) throw new Error(`${container} is ${status}: ${await inspect(container, '{{json .State.Health.Log}}')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Node inside the image (the base's node), for checks that do not depend on the base's shell tools. */
const nodeIn = (script: string, mounts: string[] = []) =>
  daemon.docker(['run', '--rm', '--network', 'host', ...mounts.flatMap((m) => ['-v', m]), '--entrypoint', 'node', TAG, '-e', script], { timeoutMs: 180_000 });

test('image: built once (tsc once), with tini as init, a health check, the two ports, and the user node', async () => {
  assert.equal(buildLog.match(/> tsc -p tsconfig\.json/g)?.length, 1, 'tsc runs once in the build');
  const config = JSON.parse(await inspect(TAG, '{{json .Config}}')) as { User: string; Entrypoint: string[]; ExposedPorts: Record<string, unknown>; Healthcheck?: { Test: string[] }; Env: string[] };
  assert.equal(config.User, 'node');
  assert.deepEqual(config.Entrypoint, ['tini', '--', 'certwrangler']);
  assert.deepEqual(Object.keys(config.ExposedPorts).sort(), ['8080/tcp', '9180/tcp']);
  assert.deepEqual(config.Healthcheck?.Test, ['CMD', 'node', '/app/dist/healthcheck.js']);
  assert.ok(!config.Env.some((e) => /CAFILE|CA_CERTS/i.test(e)), `no CA setting in the image's environment: ${config.Env.join(' ')}`);
});

test('image: the machine\'s CA bundle given to npm for the build is in no layer of the image', async (t) => {
  if (!cafile) return t.skip('npm on this machine uses no CA bundle of its own');
  // Certificates of the bundle that Node does not carry itself (the interception CA): Node's own roots are in
  // the node binary of every image, so only these say the bundle was copied in.
  const own = new Set(rootCertificates.map((p) => new X509Certificate(p).fingerprint256));
  const extra = (readFileSync(cafile, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).filter(
    (p) => !own.has(new X509Certificate(p).fingerprint256),
  );
  if (extra.length === 0) return t.skip('the CA bundle holds only the roots Node carries');
  const saved = join(dir, 'image.tar');
  await daemon.docker(['save', '-o', saved, TAG], { timeoutMs: 120_000 });
  // The second line of each PEM body: 64 base64 characters that only that certificate has.
  const needles = extra.map((p) => Buffer.from(p.split('\n')[2]!));
  const fd = openSync(saved, 'r');
  const chunk = Buffer.alloc(8 << 20);
  try {
    for (let pos = 0; pos < statSync(saved).size; pos += chunk.length - 128) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      for (const needle of needles) assert.equal(chunk.subarray(0, n).indexOf(needle), -1, `a certificate of ${cafile} is in the image`);
    }
  } finally {
    closeSync(fd);
    rmSync(saved, { force: true });
  }
});

test('image: nothing from devDependencies is in it; every dependency is', async () => {
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const dev = Object.entries(lock.packages).filter(([p, v]) => p.startsWith('node_modules/') && v.dev).map(([p]) => p);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
  const prod = Object.keys(pkg.dependencies).map((d) => `node_modules/${d}`);
  const out = await nodeIn(`const fs=require('fs');const has=(p)=>fs.existsSync('/app/'+p+'/package.json');console.log(JSON.stringify({dev:${JSON.stringify(dev)}.filter(has),prod:${JSON.stringify(prod)}.filter((p)=>!has(p)),scopes:fs.readdirSync('/app/node_modules').filter((s)=>s.startsWith('@')&&fs.readdirSync('/app/node_modules/'+s).length===0)}))`);
  const found = JSON.parse(out) as { dev: string[]; prod: string[]; scopes: string[] };
  assert.ok(dev.length > 10, 'the lock file lists the devDependencies');
  assert.deepEqual(found.dev, [], 'devDependencies in the image');
  assert.deepEqual(found.prod, [], 'dependencies missing from the image');
  assert.deepEqual(found.scopes, [], 'empty scope folders left by prune');
});

test('image: webroot and manager --once issue from Pebble as user node, into writable volumes; the health checks pass', async () => {
  const caMount = `${pebble.caBundlePath}:/pebble-ca.pem:ro`;
  await daemon.docker(['run', '-d', '--name', 'cw-webroot', '--network', 'host', '--health-interval', '1s', '-e', `PORT=${httpPort}`, '-v', 'cw-webroot:/var/www/acme:ro', TAG, 'webroot']);
  await healthy('cw-webroot');
  assert.equal((await daemon.docker(['exec', 'cw-webroot', 'node', '-e', 'console.log(process.getuid())'])).trim(), String(NODE_UID));

  const env = ['-e', `DOMAINS=${NAMES.join(',')}`, '-e', 'STAGING=false', '-e', `ACME_DIRECTORY_URL=${pebble.directoryUrl}`, '-e', 'ACME_CA_BUNDLE=/pebble-ca.pem'];
  const mounts = ['-v', 'cw-webroot:/var/www/acme', '-v', 'cw-data:/data', '-v', caMount];
  await daemon.docker(['run', '--rm', '--network', 'host', ...env, ...mounts, TAG, 'manager', '--once'], { timeoutMs: 300_000 });
  const files = JSON.parse(
    await nodeIn(
      `const fs=require('fs');const d='/data/live/${NAMES[0]}/';console.log(JSON.stringify({cert:fs.readFileSync(d+'fullchain.pem','utf8'),uid:fs.statSync(fs.realpathSync(d+'privkey.pem')).uid,mode:fs.statSync(d+'privkey.pem').mode&0o777,data:fs.statSync('/data').uid,webroot:fs.statSync('/var/www/acme').uid}))`,
      ['cw-data:/data', 'cw-webroot:/var/www/acme'],
    ),
  ) as { cert: string; uid: number; mode: number; data: number; webroot: number };
  const cert = parseCert(files.cert);
  assert.deepEqual([...cert.names].sort(), [...NAMES].sort());
  assert.equal(cert.selfSigned, false);
  assert.equal(files.uid, NODE_UID, 'the key was written by the non-root user');
  assert.equal(files.mode, 0o600);
  assert.deepEqual([files.data, files.webroot], [NODE_UID, NODE_UID], 'both volumes belong to node');

  // The long-running manager on the same data: its status endpoint answers the image's health check, and its
  // first pass orders nothing (the certificate is there).
  const statusPort = await freePort();
  await daemon.docker(['run', '-d', '--name', 'cw-manager', '--network', 'host', '--health-interval', '1s', ...env, '-e', `STATUS_ADDR=127.0.0.1:${statusPort}`, ...mounts, TAG, 'manager']);
  await healthy('cw-manager');
  const deadline = Date.now() + HEALTHY_WITHIN_MS;
  let logs = '';
  while (!/pass finished/.test(logs) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    logs = await daemon.docker(['logs', 'cw-manager']);
  }
  assert.match(logs, /"orders":0.*pass finished: 1 certificates, all fine/);
  assert.doesNotMatch(logs, /"action":"issued"/, 'the daemon found the certificate --once issued');
  await daemon.docker(['stop', '-t', '10', 'cw-manager']);
  assert.equal(await inspect('cw-manager', '{{.State.ExitCode}}'), '0', 'SIGTERM through tini ends the manager cleanly');
});

test('image: tini is PID 1 and reaps an orphan, as it must for a hook\'s grandchildren killed at HOOK_TIMEOUT', async () => {
  assert.equal((await daemon.docker(['exec', 'cw-webroot', 'node', '-e', "console.log(require('fs').readFileSync('/proc/1/cmdline','utf8').split('\\0')[0])"])).trim(), 'tini');
  // A child that outlives its parent is re-parented to PID 1, which must wait() for it when it exits; PID 1
  // that does not leaves it a zombie (state Z) for good.
  const pid = (await daemon.docker(['exec', 'cw-webroot', 'node', '-e', "const c=require('child_process').spawn('node',['-e','setTimeout(()=>{},300)'],{detached:true,stdio:'ignore'});c.unref();console.log(c.pid)"])).trim();
  assert.match(pid, /^\d+$/);
  const state = `try{console.log(require('fs').readFileSync('/proc/${pid}/stat','utf8').replace(/^.*\\) /,'')[0])}catch{console.log('gone')}`;
  const deadline = Date.now() + 90_000;
  let now = '';
  do {
    if (now) await new Promise((r) => setTimeout(r, 500));
    now = (await daemon.docker(['exec', 'cw-webroot', 'node', '-e', state])).trim();
  } while (now !== 'gone' && Date.now() < deadline);
  assert.equal(now, 'gone', `the orphan (pid ${pid}) is reaped, not left in state ${now}`);
});
