/**
 * Seed-compatible mode: the seed's own variables (CERTBOT_EMAIL without EMAIL) make DOMAINS and the hosts label
 * mean what rancher-lets-encrypt made of them, one certificate per name, and the log says so first.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createOrchestrator } from '../../src/assemble.js';
import { announceSeedMode, SEED_CERTBOT_DIR } from '../../src/seed-mode.js';
import { privateKeyPem, parseRenewalConf, kindOfServer } from '../../src/import/certbot.js';
import { generateKeyPairSync } from 'node:crypto';
import { simPool } from '../support/rancher-sim.js';

const sims = simPool();
after(() => sims.closeAll());

const seed = { CERTBOT_EMAIL: 'ops@example.com', DOMAINS: 'a.example.com,b.example.com' };

test('seed mode: CERTBOT_EMAIL without EMAIL makes every name of DOMAINS its own certificate; EMAIL leaves it', () => {
  const on = loadConfig(seed, '/work');
  assert.equal(on.seed.active, true);
  assert.deepEqual(on.domains.certs.map((c) => c.names), [['a.example.com'], ['b.example.com']]);
  assert.equal(on.email, 'ops@example.com');
  assert.deepEqual(on.seed.certbotDir, { path: SEED_CERTBOT_DIR, explicit: false }, "the seed's LETSENCRYPT_ROOTDIR default");

  const off = loadConfig({ ...seed, EMAIL: 'ops@example.com' });
  assert.equal(off.seed.active, false);
  assert.deepEqual(off.domains.certs.map((c) => c.names), [['a.example.com', 'b.example.com']]);
  assert.equal(off.seed.certbotDir, undefined, 'nothing is imported outside seed mode unless LETSENCRYPT_ROOTDIR says so');
  assert.deepEqual(loadConfig({ DOMAINS: 'a.example.com,b.example.com', EMAIL: 'x@example.com' }).domains.certs.length, 1);

  // Each way out, and the overrides.
  assert.deepEqual(loadConfig({ ...seed, DOMAINS_ONE_PER_NAME: 'false' }).domains.certs.map((c) => c.names), [['a.example.com', 'b.example.com']]);
  assert.equal(loadConfig({ ...seed, LETSENCRYPT_ROOTDIR: 'off' }).seed.certbotDir, undefined);
  assert.deepEqual(loadConfig({ ...seed, LETSENCRYPT_ROOTDIR: 'certs' }, '/srv').seed.certbotDir, { path: '/srv/certs', explicit: true });
  assert.deepEqual(loadConfig({ EMAIL: 'x@example.com', LETSENCRYPT_ROOTDIR: '/le' }).seed.certbotDir, { path: '/le', explicit: true });
  assert.equal(loadConfig({ ...seed, ACME_ACCOUNT_KEY_FILE: 'key.json' }, '/srv').seed.accountKeyFile, '/srv/key.json');
});

test('seed mode: the hosts label is one certificate per name too', async () => {
  const s = await sims.start();
  s.addService({ name: 'web', labels: { 'com.danieldent.rancher-lets-encrypt.hosts': 'web.example.com,www.web.example.com' } });
  const discover = (env: Record<string, string>) => createOrchestrator(loadConfig({ ...s.env, DATA_DIR: mkdtempSync(join(tmpdir(), 'cw-seed-mode-')), ...env }), createLogger('silent')).discover();
  assert.deepEqual((await discover(seed)).certs.map((c) => c.names), [['web.example.com'], ['www.web.example.com']]);
  assert.deepEqual((await discover({ EMAIL: 'ops@example.com' })).certs.map((c) => c.names), [['web.example.com', 'www.web.example.com']]);
});

test('seed mode: the first log lines say so, and how to leave it', () => {
  const lines: Array<{ msg: string; mode: string }> = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as { msg: string; mode: string }), cb()) });
  const config = loadConfig(seed);
  announceSeedMode(config.seed, config.domainsOnePerName, config.hostsLabel, createLogger('info', sink));
  assert.equal(lines.length, 2);
  assert.match(lines[0]!.msg, /^seed-compatible mode: CERTBOT_EMAIL is set and EMAIL is not, .*every name in DOMAINS and in the com\.danieldent\.rancher-lets-encrypt\.hosts label is its own certificate.*certbot store at \/etc\/letsencrypt \(LETSENCRYPT_ROOTDIR\) is imported at start/);
  assert.match(lines[1]!.msg, /^to leave seed-compatible mode: set EMAIL \(in place of CERTBOT_EMAIL\)/);
  assert.ok(lines.every((l) => l.mode === 'seed-compatible'));

  lines.length = 0;
  const plain = loadConfig({ EMAIL: 'ops@example.com' });
  announceSeedMode(plain.seed, plain.domainsOnePerName, plain.hostsLabel, createLogger('info', sink));
  assert.equal(lines.length, 0, 'nothing outside seed mode');
});

test("certbot's files: renewal conf, JWK and PEM keys, the kind of a directory", () => {
  const conf = parseRenewalConf('# renew_before_expiry = 30 days\nversion = 2.1.0\n[renewalparams]\naccount = 801be4\nserver = https://acme-v02.api.letsencrypt.org/directory\n');
  assert.equal(conf.server, 'https://acme-v02.api.letsencrypt.org/directory');
  assert.equal(conf.account, '801be4');
  const dirs = { dataDir: '/unused', productionDirectoryUrl: 'https://ca.example.net/dir', stagingDirectoryUrl: 'https://ca.example.net/staging' };
  assert.equal(kindOfServer('https://ca.example.net/dir/', dirs), 'production');
  assert.equal(kindOfServer('https://ca.example.net/staging', dirs), 'staging');
  assert.equal(kindOfServer('https://acme-v01.api.letsencrypt.org/directory', dirs), 'production', 'an ACME v1 store');
  assert.equal(kindOfServer('https://acme-staging-v02.api.letsencrypt.org/directory', dirs), 'staging');
  assert.equal(kindOfServer('https://elsewhere.example.org/dir', dirs), undefined);

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  assert.equal(privateKeyPem(jwk, 'private_key.json'), privateKeyPem(pem, 'key.pem'), 'a JWK and a PEM of one key give the same PKCS#8 PEM');
  assert.throws(() => privateKeyPem(JSON.stringify({ kty: 'RSA', n: 'x', e: 'AQAB' }), '/le/private_key.json'), /^Error: \/le\/private_key\.json: not a private key \(a JWK with "kty" and the private part "d" is expected\)/);
  const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  assert.throws(() => privateKeyPem(ed, '/k.pem'), /\/k\.pem: a ed25519 key; ACME accounts take RSA or EC/);
  assert.throws(() => privateKeyPem('-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n', '/k.pem'), (e: Error) => !e.message.includes('not base64') && /the key does not parse/.test(e.message));
});

test("README: the seed-compatible mode lines shown in the migration section are the ones the manager logs, word for word", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Migrating from rancher-lets-encrypt'));
  const block = /```\n([\s\S]*?)\n\s*```/.exec(section)![1]!.split('\n').map((l) => l.trim());
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push((JSON.parse(chunk.toString()) as { msg: string }).msg), cb()) });
  const config = loadConfig(seed);
  announceSeedMode(config.seed, config.domainsOnePerName, config.hostsLabel, createLogger('info', sink));
  assert.deepEqual(block, lines);
});
