/**
 * Balancer-native outputs (issue 21 item 3) with real balancers: a real HAProxy reading the crt-list and
 * updated through its runtime API while `wrk` keeps connections open on it; Traefik's dynamic file parsed;
 * the nginx includes checked by `nginx -t` and served by a real nginx. One Pebble for the file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { parseCert } from '../../src/certs/parse.js';
import { renewalTime } from '../../src/policy.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, passWithOrders, pebbleEnv } from '../support/harness.js';
import { startNginx, type Nginx } from '../support/nginx.js';
import { freePort } from '../support/ports.js';
import { RuntimeApi } from '../../src/outputs/haproxy/runtime-api.js';

const DAY = 86_400_000;
const base = mkdtempSync(join(tmpdir(), 'cw-outputs-'));
const lab = acmeLab(base);
let pebble: Pebble;
let haproxy: ChildProcess | undefined;
let nginx: Nginx | undefined;

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  haproxy?.kill('SIGKILL');
  await nginx?.stop();
  await lab.stop();
});

const errorsOf = (report: { results: { name: string; error?: string }[]; errors: string[] }) =>
  JSON.stringify(report.results.filter((x) => x.error).map((x) => `${x.name}: ${x.error}`).concat(report.errors));

function caseEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), CERTS_DIR: join(base, dir, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...pebbleEnv(pebble, 'production'), ...extra };
}

/** The leaf certificate a TLS server on `port` presents for `servername`, as a SHA-256 fingerprint. */
function servedFingerprint(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()!.fingerprint256.toLowerCase();
      s.end();
      resolve(fp);
    });
    s.setTimeout(5000, () => s.destroy(new Error(`no TLS handshake on ${port}`)));
    s.on('error', reject);
  });
}

const fingerprintOf = (certsDir: string, name: string) => parseCert(readFileSync(join(certsDir, name, 'cert.pem'), 'utf8')).fingerprint;

test('HAProxy: the crt-list is served, a renewal is committed through the runtime API under a running wrk with no reload and no dropped connection, and a new name is added without a reload', async () => {
  const sock = join(base, 'haproxy', 'admin.sock');
  mkdirSync(join(base, 'haproxy'), { recursive: true });
  const env = caseEnv('haproxy', { DOMAINS: 'a.example.com', OUTPUTS: 'haproxy', HAPROXY_RUNTIME_API: sock });
  const certsDir = env.CERTS_DIR!;

  // HAProxy is not running yet: the certificate is in place, and the runtime update is reported pending.
  const first = await passWithOrders(env);
  assert.equal(first.report.ok, true, errorsOf(first.report));
  assert.deepEqual(first.report.results[0]!.pendingReloads, [`HAProxy runtime API ${sock}`]);
  const crtList = join(certsDir, 'haproxy', 'crt-list');
  assert.deepEqual(readFileSync(crtList, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')), [join(certsDir, 'a.example.com', 'bundle.pem')]);

  const port = await freePort();
  const cfg = join(base, 'haproxy', 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      `  stats socket ${sock} level admin`,
      '  maxconn 256',
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend fe',
      `  bind 127.0.0.1:${port} ssl crt-list ${crtList}`,
      '  http-request return status 200 content-type text/plain string ok',
      '',
    ].join('\n'),
  );
  assert.equal(spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' }).status, 0, 'haproxy -c accepts the crt-list');
  let haproxyLog = '';
  haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.on('data', (b: Buffer) => (haproxyLog += b));
  haproxy.stderr!.on('data', (b: Buffer) => (haproxyLog += b));
  const api = new RuntimeApi({ path: sock }, 2000);
  const info = async () => Object.fromEntries((await api.send('show info')).split('\n').map((l) => l.split(': ')).filter((kv) => kv.length === 2)) as Record<string, string>;
  for (let i = 0; ; i++) {
    if (await info().then(() => true, () => false)) break;
    assert.ok(i < 100 && haproxy.exitCode === null, `haproxy did not start: ${haproxyLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = (await info()).Pid;
  assert.equal(pid, String(haproxy.pid));
  const before = fingerprintOf(certsDir, 'a.example.com');
  assert.equal(await servedFingerprint(port, 'a.example.com'), before);

  // wrk keeps 8 connections busy while the renewal is ordered, pushed and committed.
  const wrk = spawn('wrk', ['-t1', '-c8', '-d120s', '--timeout', '10s', `https://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let wrkOut = '';
  wrk.stdout!.on('data', (b: Buffer) => (wrkOut += b));
  wrk.stderr!.on('data', (b: Buffer) => (wrkOut += b));
  const wrkDone = new Promise<number | null>((r) => wrk.on('close', (c) => r(c)));
  for (let i = 0; Number((await info()).CurrConns ?? 0) < 8; i++) {
    assert.ok(i < 100, `wrk did not connect: ${wrkOut}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const due = new Date(renewalTime(parseCert(readFileSync(join(certsDir, 'a.example.com', 'cert.pem'), 'utf8')), undefined).getTime() + DAY);
  const oldBundle = readFileSync(join(certsDir, 'a.example.com', 'bundle.pem'), 'utf8');
  const second = await passWithOrders(env, { now: () => due });
  const during = Number((await info()).CurrConns);
  wrk.kill('SIGINT');
  assert.equal(await wrkDone, 0, wrkOut);

  assert.equal(second.report.ok, true, errorsOf(second.report));
  assert.equal(second.orders, 1);
  assert.equal(second.report.results[0]!.pendingReloads, undefined, 'the runtime API took the renewal');
  const after = fingerprintOf(certsDir, 'a.example.com');
  assert.notEqual(after, before);
  assert.equal(await servedFingerprint(port, 'a.example.com'), after, 'a new connection gets the renewed certificate');
  assert.equal((await info()).Pid, pid, 'the same HAProxy process: no reload, no restart');
  assert.ok(during >= 8, `wrk's connections stayed open through the update (${during})`);
  assert.match(wrkOut, /requests in/, wrkOut);
  assert.doesNotMatch(wrkOut, /Socket errors|Non-2xx/, `no dropped connection, no failed request: ${wrkOut}`);

  // HAProxy lost an update (here: the old bundle put back by hand): the next pass finds it serving another
  // certificate than CERTS_DIR holds and updates it, with nothing remembered from before.
  assert.match(await api.send(`set ssl cert ${join(certsDir, 'a.example.com', 'bundle.pem')} <<\n${oldBundle.trim()}\n`), /Transaction/);
  assert.match(await api.send(`commit ssl cert ${join(certsDir, 'a.example.com', 'bundle.pem')}`), /Success/);
  assert.equal(await servedFingerprint(port, 'a.example.com'), before);

  // A new name: new ssl cert + add ssl crt-list, still the same process.
  const third = await passWithOrders({ ...env, DOMAINS: 'a.example.com;b.example.com' });
  assert.equal(third.report.ok, true, errorsOf(third.report));
  assert.deepEqual(third.report.results.map((r) => r.pendingReloads), [undefined, undefined]);
  assert.equal(await servedFingerprint(port, 'b.example.com'), fingerprintOf(certsDir, 'b.example.com'));
  assert.equal(await servedFingerprint(port, 'a.example.com'), after, 'the lost update was made again');
  assert.equal((await info()).Pid, pid);
  assert.match(await api.send('show ssl crt-list -n ' + crtList), /b\.example\.com\/bundle\.pem/);
  assert.equal(readFileSync(crtList, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).length, 2);
  assert.equal(spawnSync('haproxy', ['-c', '-f', cfg]).status, 0, 'the crt-list on disk loads at the next start');

  // Both renewed in one pass, pushed at the same moment: HAProxy holds one certificate transaction at a time,
  // so the updates go one after the other and neither is left pending.
  const bothDue = new Date(renewalTime(parseCert(readFileSync(join(certsDir, 'b.example.com', 'cert.pem'), 'utf8')), undefined).getTime() + DAY);
  const fourth = await passWithOrders({ ...env, DOMAINS: 'a.example.com;b.example.com' }, { now: () => bothDue });
  assert.equal(fourth.report.ok, true, errorsOf(fourth.report));
  assert.equal(fourth.orders, 2);
  assert.deepEqual(fourth.report.results.map((r) => r.pendingReloads), [undefined, undefined]);
  for (const name of ['a.example.com', 'b.example.com']) assert.equal(await servedFingerprint(port, name), fingerprintOf(certsDir, name), name);
  assert.equal((await info()).Pid, pid);
});

test('Traefik and nginx: the dynamic file parses and names a matching key and certificate; each nginx include passes nginx -t and is served, and follows a renewal', async () => {
  const env = caseEnv('files', { DOMAINS: 'www.example.org;*.example.org', DNS_PROVIDER: 'challtestsrv', CHALLTESTSRV_URL: pebble.dnsManagementUrl, DNS_RESOLVERS: pebble.dnsAddress, OUTPUTS: 'traefik,nginx', BALANCER_CERTS_DIR: '/etc/certs' });
  const certsDir = env.CERTS_DIR!;
  const first = await passWithOrders(env);
  assert.equal(first.report.ok, true, errorsOf(first.report));

  // Traefik sees CERTS_DIR at /etc/certs: the file names paths there, one pair per certificate.
  const traefik = parseYaml(readFileSync(join(certsDir, 'traefik', 'certwrangler.yml'), 'utf8')) as { tls: { certificates: { certFile: string; keyFile: string }[] } };
  assert.equal(traefik.tls.certificates.length, 2);
  for (const c of traefik.tls.certificates) {
    assert.match(c.certFile, /^\/etc\/certs\/\.certwrangler-archive\/[^/]+\/\d+\/fullchain\.pem$/);
    const local = (p: string) => join(certsDir, p.slice('/etc/certs/'.length));
    const cert = new X509Certificate(readFileSync(local(c.certFile)));
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(local(c.keyFile)))), `${c.keyFile} is the key of ${c.certFile}`);
  }

  // nginx mounts CERTS_DIR at the same path here: the includes written for /etc/certs are rewritten for the test's path.
  const includes = join(base, 'nginx-includes');
  mkdirSync(includes, { recursive: true });
  const port = await freePort();
  const site = ['www.example.org', '_.example.org']
    .map((name) => {
      writeFileSync(join(includes, `${name}.conf`), readFileSync(join(certsDir, 'nginx', `${name}.conf`), 'utf8').replaceAll('/etc/certs', certsDir));
      const serverName = name === '_.example.org' ? '*.example.org' : name;
      return `server {\n  listen 127.0.0.1:${port} ssl;\n  server_name ${serverName};\n  include ${join(includes, `${name}.conf`)};\n  return 200 "${name}";\n}\n`;
    })
    .join('');
  const dir = join(base, 'nginx');
  nginx = await startNginx(dir, site, port);
  const t = spawnSync('nginx', ['-t', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(t.status, 0, t.stderr);
  assert.equal(await servedFingerprint(port, 'www.example.org'), fingerprintOf(certsDir, 'www.example.org'));
  assert.equal(await servedFingerprint(port, 'api.example.org'), fingerprintOf(certsDir, '_.example.org'));

  const was = readlinkSync(join(certsDir, 'www.example.org'));
  // A renewal rewrites the include to the new version and the Traefik file with it.
  const due = new Date(renewalTime(parseCert(readFileSync(join(certsDir, 'www.example.org', 'cert.pem'), 'utf8')), undefined).getTime() + DAY);
  const second = await passWithOrders(env, { now: () => due });
  assert.equal(second.report.ok, true, errorsOf(second.report));
  assert.equal(second.orders, 2, 'both certificates fall due together');
  const version = readlinkSync(join(certsDir, 'www.example.org'));
  assert.notEqual(version, was);
  assert.match(readFileSync(join(certsDir, 'nginx', 'www.example.org.conf'), 'utf8'), new RegExp(`ssl_certificate "/etc/certs/${version.replaceAll('.', '\\.')}/fullchain\\.pem";`));
  assert.match(readFileSync(join(certsDir, 'traefik', 'certwrangler.yml'), 'utf8'), new RegExp(`"/etc/certs/${version.replaceAll('.', '\\.')}/privkey\\.pem"`));
});
