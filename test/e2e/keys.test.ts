/**
 * Keys against real Pebble (issue 17 item 4): a fresh private key on every renewal by default; REUSE_KEY=true,
 * or a service's `.reuse_key=true` label, keeps it across renewals (DANE/TLSA pinning); `.key_type` picks the
 * key of a label's certificate. Labels are untrusted: a value outside the list is refused, naming the service.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { DEFAULT_HOSTS_LABEL } from '../../src/config.js';
import { keyTypeOf } from '../../src/key-choice.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, passWithOrders, pebbleEnv, errors } from '../support/harness.js';
import { simPool } from '../support/rancher-sim.js';

const base = mkdtempSync(join(tmpdir(), 'cw-keys-'));
const lab = acmeLab(base);
const sims = simPool();
const LABEL = DEFAULT_HOSTS_LABEL;
let pebble: Pebble;

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

const storedKey = (dataDir: string, name: string) => readFileSync(join(dataDir, 'certs', name, 'privkey.pem'), 'utf8');
const storedCert = (dataDir: string, name: string) => parseCert(readFileSync(join(dataDir, 'certs', name, 'cert.pem'), 'utf8'));
/** A moment when the stored certificate is due for renewal (a day before it ends). */
const dueAt = (dataDir: string, name: string) => new Date(storedCert(dataDir, name).notAfter.getTime() - 86_400_000);

test('a renewal has a fresh key by default; with REUSE_KEY=true it keeps the key', async () => {
  for (const [dir, reuse] of [['fresh', false], ['reuse', true]] as const) {
    const env = { DATA_DIR: join(base, dir, 'data'), CERTS_DIR: join(base, dir, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', DOMAINS: `${dir}.example.com`, ...pebbleEnv(pebble, 'production'), ...(reuse ? { REUSE_KEY: 'true' } : {}) };
    const name = `${dir}.example.com`;
    assert.equal((await passWithOrders(env)).report.ok, true);
    const key = storedKey(env.DATA_DIR, name);
    const serial = storedCert(env.DATA_DIR, name).serialNumber;
    const renewal = await passWithOrders(env, { now: () => dueAt(env.DATA_DIR, name) });
    assert.equal(renewal.orders, 1, `${dir}: renewed`);
    assert.equal(renewal.report.results[0]!.decision.reason, 'Renew');
    assert.notEqual(storedCert(env.DATA_DIR, name).serialNumber, serial);
    const servedKey = readFileSync(join(env.CERTS_DIR, name, 'privkey.pem'), 'utf8');
    if (reuse) assert.equal(servedKey, key, 'REUSE_KEY: the same key');
    else assert.notEqual(servedKey, key, 'default: a fresh key');
  }
});

test('labels: .key_type picks the key, .reuse_key keeps it, a changed .key_type gets a fresh key, and a bad value is refused naming the service', async () => {
  const s = await sims.start();
  const web = s.addService({ name: 'web', labels: { [LABEL]: 'web.example.com', [`${LABEL}.key_type`]: 'ecdsa-p256', [`${LABEL}.reuse_key`]: 'true' } });
  const bad = s.addService({ name: 'bad', labels: { [LABEL]: 'bad.example.com', [`${LABEL}.key_type`]: 'dsa-1024' } });
  const odd = s.addService({ name: 'odd', labels: { [LABEL]: 'odd.example.com', [`${LABEL}.reuse_key`]: 'sometimes' } });
  const dataDir = join(base, 'labels', 'data');
  const env = { DATA_DIR: dataDir, WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...s.env, ...pebbleEnv(pebble, 'production') };
  const opts = { settleTimeoutMs: 5000 };

  const first = await passWithOrders(env, opts);
  assert.equal(errors(first.report).includes('web.example.com'), false, errors(first.report));
  assert.deepEqual(first.report.results.map((r) => r.name), ['web.example.com']);
  assert.deepEqual(
    first.report.refused.map((r) => [r.service, r.error]),
    [
      [`bad (${bad.id})`, `${LABEL}.key_type="dsa-1024" is not valid; accepted: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384`],
      [`odd (${odd.id})`, `${LABEL}.reuse_key="sometimes" is not valid; accepted: true, false`],
    ],
  );
  const key = storedKey(dataDir, 'web.example.com');
  assert.equal(keyTypeOf(key), 'ecdsa-p256');
  const inRancher = new X509Certificate(s.certByName('web.example.com')!.cert);
  assert.equal(inRancher.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'Rancher serves the P-256 certificate');

  const renewed = await passWithOrders(env, { ...opts, now: () => dueAt(dataDir, 'web.example.com') });
  assert.equal(renewed.orders, 1);
  assert.equal(storedKey(dataDir, 'web.example.com'), key, '.reuse_key=true keeps the key');
  const pinned = createPublicKey(key).export({ type: 'spki', format: 'der' });
  assert.deepEqual(new X509Certificate(s.certByName('web.example.com')!.cert).publicKey.export({ type: 'spki', format: 'der' }), pinned, 'the TLSA pin still matches');

  // The tenant asks for another key type: reusing the old key cannot give it.
  web.labels[`${LABEL}.key_type`] = 'ecdsa-p384';
  const changed = await passWithOrders(env, { ...opts, now: () => dueAt(dataDir, 'web.example.com') });
  assert.equal(changed.orders, 1);
  assert.equal(keyTypeOf(storedKey(dataDir, 'web.example.com')), 'ecdsa-p384');
});
