/**
 * DNS-01 end to end with Pebble. One Pebble resolves through a real BIND, written to by the rfc2136
 * provider; the other through pebble-challtestsrv: wildcards, a pass mixing HTTP-01 and DNS-01 per service
 * label, delegation through a CNAME, the exec provider with scripts that work, fail or hang, and the
 * propagation check. After every run, successful or not, the TXT records are gone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { DEFAULT_HOSTS_LABEL } from '../../src/config.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import type { Pebble } from '../support/pebble.js';
import { startBind, type Bind } from '../support/bind.js';
import { startCloudflareSim } from '../support/cloudflare-sim.js';
import { acmeLab, assertChainVerifies, passWithOrders, pebbleEnv, runCli } from '../support/harness.js';
import { simPool } from '../support/rancher-sim.js';

const base = mkdtempSync(join(tmpdir(), 'cw-dns01-'));
const lab = acmeLab(base);
const sims = simPool();
let pebble: Pebble;
let bind: Bind;
/** A Pebble whose every lookup (A for HTTP-01, TXT for DNS-01) goes to `bind`. */
let pebbleOnBind: Pebble;

before(async () => {
  // In BIND's zone every name is 127.0.0.1: Pebble's HTTP-01 reaches the webroot.
  bind = await startBind({ dir: join(base, 'bind'), zones: ['example.net'] });
  [pebble, pebbleOnBind] = await Promise.all([lab.pebble('pebble'), lab.pebble('pebble-bind', { dnsServer: bind.address })]);
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
  await bind.stop();
});

/** A run of its own (data and certificate folders under `dir`) against `ca`, writing TXT records as `dns` says. */
function caseEnv(dir: string, ca: Pebble, dns: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), CERTS_DIR: join(base, dir, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...pebbleEnv(ca, 'production'), ...dns, ...extra };
}

/** rfc2136 into the test BIND, with the Pebble that resolves through it. */
const bindEnv = (dir: string, extra: Record<string, string>) =>
  caseEnv(dir, pebbleOnBind, { DNS_PROVIDER: 'rfc2136', RFC2136_NAMESERVER: bind.address, RFC2136_TSIG_KEY: bind.key.name, RFC2136_TSIG_SECRET: bind.key.secret, RFC2136_TSIG_ALGORITHM: bind.key.algorithm, DNS_RESOLVERS: bind.address }, extra);

/** challtestsrv, with the Pebble that resolves through it. */
const envFor = (dir: string, extra: Record<string, string>) => caseEnv(dir, pebble, { DNS_PROVIDER: 'challtestsrv', CHALLTESTSRV_URL: pebble.dnsManagementUrl, DNS_RESOLVERS: pebble.dnsAddress }, extra);

const namesOf = (env: Record<string, string>, cert: string) => [...parseCert(readFileSync(join(env.CERTS_DIR!, cert, 'cert.pem'), 'utf8')).names].sort();

/** The TXT values challtestsrv serves at a name now. */
async function txt(fqdn: string): Promise<string[]> {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([pebble.dnsAddress]);
  return (await r.resolveTxt(fqdn).catch(() => [] as string[][])).map((c) => c.join(''));
}

const errorsOf = (report: { results: { name: string; error?: string }[]; errors: string[] }) =>
  JSON.stringify(report.results.filter((x) => x.error).map((x) => `${x.name}: ${x.error}`).concat(report.errors));

test('rfc2136 on a real BIND: a wildcard with its apex, both validated over DNS-01 by a Pebble resolving through that BIND', async () => {
  const env = bindEnv('bind-wildcard', { DOMAINS: 'example.net,*.example.net', CHALLENGE: 'dns-01' });
  const { report, orders, requests } = await passWithOrders(env);
  assert.equal(report.ok, true, errorsOf(report));
  assert.equal(orders, 1);
  assert.deepEqual(namesOf(env, 'example.net'), ['*.example.net', 'example.net']);
  assertChainVerifies(readFileSync(join(env.CERTS_DIR!, 'example.net', 'fullchain.pem'), 'utf8'), await pebbleOnBind.root());
  // Two authorizations (apex and wildcard), two challenges answered, both dns-01 at the same name.
  assert.equal([...requests].filter(([k]) => /^200 POST \/chalZ\//.test(k)).reduce((n, [, v]) => n + v, 0), 2);
  const changes = bind.journal('example.net').filter((l) => l.includes('_acme-challenge.example.net.'));
  assert.deepEqual(changes.map((l) => l.split(' ')[0]).sort(), ['add', 'add', 'del', 'del'], 'two values written through TSIG-signed updates, both deleted');
  assert.deepEqual(await bind.txt('_acme-challenge.example.net'), []);
});

test('rfc2136 on a real BIND, mixed pass: an HTTP-01 certificate (its name resolved by BIND) and a DNS-01 wildcard', async () => {
  const env = { ...bindEnv('bind-mixed', { DOMAINS: 'www.example.net;*.apps.example.net', LOG_LEVEL: 'info' }) };
  const run = await runCli(['manager', '--once'], env);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const lines = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { cert?: string; action?: string; challenge?: string });
  const used = Object.fromEntries(lines.filter((l) => l.action === 'order').map((l) => [l.cert, l.challenge]));
  assert.deepEqual(used, { 'www.example.net': 'http-01', '_.apps.example.net': 'dns-01' });
  assert.deepEqual(namesOf(env, 'www.example.net'), ['www.example.net']);
  assert.deepEqual(namesOf(env, '_.apps.example.net'), ['*.apps.example.net']);
  assert.deepEqual(await bind.txt('_acme-challenge.apps.example.net'), []);
});

test('rfc2136: when the CA cannot see the record (it asks another DNS), validation fails and the record is deleted from BIND', async () => {
  // Split horizon: the record is visible at DNS_RESOLVERS (BIND), but this Pebble resolves through challtestsrv.
  const env = { ...bindEnv('bind-fail', { DOMAINS: 'fail.example.net', CHALLENGE: 'dns-01' }), ...pebbleEnv(pebble, 'production') };
  const { report, requests } = await passWithOrders(env);
  const r = report.results[0]!;
  assert.equal(r.outcome, 'failed');
  assert.match(r.error!, /fail\.example\.net/);
  assert.equal([...requests].filter(([k]) => /^200 POST \/chalZ\//.test(k)).length, 1, 'the CA was asked to validate');
  const changes = bind.journal('example.net').filter((l) => l.includes('_acme-challenge.fail.example.net.'));
  assert.deepEqual(changes.map((l) => l.split(' ')[0]), ['add', 'del'], 'written, then deleted');
  assert.deepEqual(await bind.txt('_acme-challenge.fail.example.net'), []);
  assert.equal(parseCert(readFileSync(join(env.CERTS_DIR!, 'fail.example.net', 'cert.pem'), 'utf8')).selfSigned, true, 'only the placeholder is served');
});

test('cloudflare: a wildcard with its apex through the API (zone on the second page); the records are deleted; the token is never logged', async () => {
  // The simulated Cloudflare serves its TXT records through challtestsrv, the DNS this Pebble resolves with.
  // challtestsrv can only clear a name whole, so a name is cleared when its last record goes: clearing and
  // re-adding on every delete would hide the wildcard's value while the CA is looking for it.
  const served = new Map<string, Set<string>>();
  const cf = await startCloudflareSim({
    zones: [...Array.from({ length: 60 }, (_, i) => `z${i}.example.net`), 'cf.example.org'],
    publish: async (fqdn, values) => {
      const now = served.get(fqdn) ?? new Set<string>();
      served.set(fqdn, now);
      if (values.length === 0) {
        now.clear();
        await fetch(`${pebble.dnsManagementUrl}/clear-txt`, { method: 'POST', body: JSON.stringify({ host: `${fqdn}.` }) });
      }
      for (const value of values.filter((v) => !now.has(v))) {
        now.add(value);
        await fetch(`${pebble.dnsManagementUrl}/set-txt`, { method: 'POST', body: JSON.stringify({ host: `${fqdn}.`, value }) });
      }
    },
  });
  try {
    const env = envFor('cloudflare', { DOMAINS: 'cf.example.org,*.cf.example.org', DNS_PROVIDER: 'cloudflare', CLOUDFLARE_API_URL: cf.apiUrl, CLOUDFLARE_DNS_API_TOKEN: cf.token, LOG_LEVEL: 'debug' });
    const run = await runCli(['manager', '--once'], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(namesOf(env, 'cf.example.org'), ['*.cf.example.org', 'cf.example.org']);
    const creates = cf.requests.filter((r) => r.method === 'POST');
    const deletes = cf.requests.filter((r) => r.method === 'DELETE');
    assert.deepEqual([creates.length, deletes.length], [2, 2]);
    assert.ok([...creates, ...deletes].every((r) => r.status === 200));
    assert.deepEqual(cf.requests.filter((r) => r.path.startsWith('/zones?')).map((r) => r.path), ['/zones?page=1&per_page=50', '/zones?page=2&per_page=50']);
    assert.deepEqual(cf.records, []);
    assert.deepEqual(await txt('_acme-challenge.cf.example.org'), []);
    assert.ok(!(run.stdout + run.stderr).includes(cf.token), 'the API token is not in the output');
  } finally {
    await cf.close();
  }
});

test('a wildcard with its apex, validated over DNS-01: one certificate for both, and no TXT record left', async () => {
  const env = envFor('wildcard', { DOMAINS: 'wild.example.com,*.wild.example.com' });
  const { report, orders } = await passWithOrders(env);
  assert.equal(report.ok, true, errorsOf(report));
  assert.equal(orders, 1);
  assert.equal(report.results[0]!.name, 'wild.example.com');
  const dir = join(env.CERTS_DIR!, 'wild.example.com');
  const info = parseCert(readFileSync(join(dir, 'cert.pem'), 'utf8'));
  assert.deepEqual([...info.names].sort(), ['*.wild.example.com', 'wild.example.com']);
  assertChainVerifies(readFileSync(join(dir, 'fullchain.pem'), 'utf8'), await pebble.root());
  assert.deepEqual(await txt('_acme-challenge.wild.example.com'), []);
});

test('without a DNS provider a wildcard is refused with what to set; CHALLENGE=dns-01 without one is a configuration error', async () => {
  const plain = await runCli(['plan'], { ...envFor('no-provider', { DOMAINS: '*.nope.example.com' }), DNS_PROVIDER: '' });
  assert.match(plain.stdout, /refused: \*\.nope\.example\.com \(DOMAINS\): "\*\.nope\.example\.com" is a wildcard; wildcards are validated over DNS-01 only: set DNS_PROVIDER/);
  const bad = await runCli(['plan'], { ...envFor('no-provider', { DOMAINS: 'a.example.com', CHALLENGE: 'dns-01' }), DNS_PROVIDER: '' });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /DNS_PROVIDER="" is not valid; accepted: one of rfc2136, cloudflare, exec, challtestsrv \(CHALLENGE=dns-01 needs a provider/);
});

test('a mixed pass: a service labelled <HOSTS_LABEL>.challenge=dns-01 and a wildcard use DNS-01, the rest HTTP-01', async () => {
  const s = await sims.start();
  s.addService({ name: 'web', labels: { [DEFAULT_HOSTS_LABEL]: 'www.mixed.example.com' } });
  s.addService({ name: 'internal', labels: { [DEFAULT_HOSTS_LABEL]: 'intranet.mixed.example.com', [`${DEFAULT_HOSTS_LABEL}.challenge`]: 'dns-01' } });
  s.addService({ name: 'typo', labels: { [DEFAULT_HOSTS_LABEL]: 'typo.mixed.example.com', [`${DEFAULT_HOSTS_LABEL}.challenge`]: 'dns01' } });
  const env: Record<string, string> = { ...envFor('mixed', { DOMAINS: '*.apps.mixed.example.com', LOG_LEVEL: 'info', LABELS_ALLOW_DNS01: 'true' }), ...s.env };
  delete env.CERTS_DIR; // certificates go to Rancher
  const run = await runCli(['manager', '--once'], env);
  const lines = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; cert?: string; action?: string; challenge?: string });
  const used = Object.fromEntries(lines.filter((l) => l.action === 'order').map((l) => [l.cert, l.challenge]));
  assert.deepEqual(used, { 'www.mixed.example.com': 'http-01', 'intranet.mixed.example.com': 'dns-01', '_.apps.mixed.example.com': 'dns-01' });
  for (const name of ['www.mixed.example.com', 'intranet.mixed.example.com', '_.apps.mixed.example.com']) {
    const c = s.certByName(name);
    assert.ok(c && !parseCert(c.cert).selfSigned, `${name} is in Rancher with its real certificate`);
  }
  assert.ok(lines.some((l) => /^refused typo\.mixed\.example\.com from label .* on service typo .*\.challenge="dns01" is not valid; accepted: http-01, dns-01/.test(l.msg)));
  assert.equal(run.code, 0, 'a refused label is logged and shown, but it is the tenant\'s to fix: the pass is fine');
  assert.deepEqual(await txt('_acme-challenge.intranet.mixed.example.com'), []);
});

test('a CNAME on _acme-challenge delegates validation: the record is written at its target', async () => {
  const set = await fetch(`${pebble.dnsManagementUrl}/set-cname`, { method: 'POST', body: JSON.stringify({ host: '_acme-challenge.delegated.example.com.', target: 'delegated.acme-zone.example.net.' }) });
  assert.equal(set.status, 200);
  const dir = join(base, 'cname');
  mkdirSync(dir, { recursive: true });
  const calls = join(dir, 'calls.log');
  const script = writeScript(dir, 'record.mjs', recorder(calls, true));
  const env = envFor('cname', { DOMAINS: 'delegated.example.com', CHALLENGE: 'dns-01', DNS_PROVIDER: 'exec', EXEC_PATH: script });
  const { report } = await passWithOrders(env);
  assert.equal(report.ok, true, errorsOf(report));
  const logged = readFileSync(calls, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '));
  assert.deepEqual(logged, ['present delegated.acme-zone.example.net.', 'cleanup delegated.acme-zone.example.net.']);
});

/** An exec provider script that logs its calls and, when `write`, sets the record through challtestsrv. */
function recorder(calls: string, write: boolean): string {
  return `
import { appendFileSync } from 'node:fs';
const [action, fqdn, value] = process.argv.slice(2);
appendFileSync(${JSON.stringify(calls)}, \`\${action} \${fqdn} \${value}\\n\`);
if (${write}) {
  const path = action === 'present' ? '/set-txt' : '/clear-txt';
  const res = await fetch(${JSON.stringify(pebble.dnsManagementUrl)} + path, { method: 'POST', body: JSON.stringify({ host: fqdn, value }) });
  if (res.status !== 200) { console.error('challtestsrv said ' + res.status); process.exit(1); }
}
`;
}

function writeScript(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!${process.execPath}\n${body}`);
  chmodSync(path, 0o755);
  return path;
}

test('exec provider: a working script issues; a failing one and a hanging one fail with what they said, are cleaned up, and hold nothing up', async () => {
  const dir = join(base, 'exec');
  mkdirSync(dir, { recursive: true });
  const calls = join(dir, 'calls.log');
  const works = writeScript(dir, 'works.mjs', recorder(calls, true));
  const ok = await passWithOrders(envFor('exec-ok', { DOMAINS: 'exec.example.com', CHALLENGE: 'dns-01', DNS_PROVIDER: 'exec', EXEC_PATH: works }));
  assert.equal(ok.report.ok, true, errorsOf(ok.report));
  const log = readFileSync(calls, 'utf8').trim().split('\n');
  assert.equal(log.length, 2);
  assert.match(log[0]!, /^present _acme-challenge\.exec\.example\.com\. [A-Za-z0-9_-]{43}$/);
  assert.equal(log[1]!.replace(/^cleanup/, 'present'), log[0], 'cleanup gets the same name and value');
  assert.deepEqual(await txt('_acme-challenge.exec.example.com'), []);

  const failCalls = join(dir, 'fail.log');
  const fails = writeScript(dir, 'fails.mjs', `${recorder(failCalls, false)}\nif (process.argv[2] === 'present') { console.error('zone example.com not found in account'); process.exit(3); }`);
  const hangs = writeScript(dir, 'hangs.mjs', `await new Promise((r) => setTimeout(r, 60_000));`);
  const started = Date.now();
  const [failed, hung] = await Promise.all([
    passWithOrders(envFor('exec-fail', { DOMAINS: 'fails.example.com', CHALLENGE: 'dns-01', DNS_PROVIDER: 'exec', EXEC_PATH: fails })),
    passWithOrders(envFor('exec-hang', { DOMAINS: 'hangs.example.com', CHALLENGE: 'dns-01', DNS_PROVIDER: 'exec', EXEC_PATH: hangs, EXEC_TIMEOUT: '1s' })),
  ]);
  assert.ok(Date.now() - started < 20_000, 'a hanging script is killed at EXEC_TIMEOUT');
  const f = failed.report.results[0]!;
  assert.equal(f.outcome, 'failed');
  assert.match(f.error!, /EXEC_PATH .*fails\.mjs present _acme-challenge\.fails\.example\.com\. exited with 3: zone example\.com not found in account/);
  assert.deepEqual(readFileSync(failCalls, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]), ['present', 'cleanup'], 'cleaned up after a failed present');
  const h = hung.report.results[0]!;
  assert.equal(h.outcome, 'failed');
  assert.match(h.error!, /hangs\.mjs present .* killed after 1000 ms \(EXEC_TIMEOUT\)/);
  // Neither failure reached the CA's validation, so neither counts against the failed-validation limit.
  for (const d of ['exec-fail', 'exec-hang']) {
    const ledgerDir = join(base, d, 'data', 'ledger');
    const ledger = JSON.parse(readFileSync(join(ledgerDir, readdirSync(ledgerDir)[0]!), 'utf8')) as LedgerData;
    assert.deepEqual(ledger.failedAuthorizations, []);
  }
});

test('propagation: a record that never becomes visible fails at DNS_PROPAGATION_TIMEOUT, before the CA is asked to validate', async () => {
  const dir = join(base, 'invisible');
  mkdirSync(dir, { recursive: true });
  const calls = join(dir, 'calls.log');
  const liar = writeScript(dir, 'liar.mjs', recorder(calls, false));
  const env = envFor('invisible', { DOMAINS: 'invisible.example.com', CHALLENGE: 'dns-01', DNS_PROVIDER: 'exec', EXEC_PATH: liar, DNS_PROPAGATION_TIMEOUT: '1s' });
  const { report, requests } = await passWithOrders(env);
  const r = report.results[0]!;
  assert.equal(r.outcome, 'failed');
  assert.match(r.error!, new RegExp(`TXT _acme-challenge\\.invisible\\.example\\.com not visible at ${pebble.dnsAddress.replace(/\./g, '\\.')} after 1 s \\(DNS_PROPAGATION_TIMEOUT\\)`));
  const answered = [...requests].filter(([k]) => /^200 POST \/chalZ\//.test(k));
  assert.deepEqual(answered, [], 'the challenge was never answered');
  assert.ok(existsSync(calls) && readFileSync(calls, 'utf8').includes('cleanup'), 'the record is cleaned up anyway');
});
