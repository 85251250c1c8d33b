/**
 * Issue 23: TLS to the CA is checked. A real Pebble whose TLS certificate is not in ACME_CA_BUNDLE (nor in
 * Node's roots) is refused at the handshake: the pass reports the certificate error, and the CA never
 * answers a request, so no account and no order is made. With Pebble's own certificate in ACME_CA_BUNDLE
 * the same setup orders, which shows the bundle, and nothing else, made the difference.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, filesUnder, passWithOrders, pebbleEnv } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-tls-'));
const lab = acmeLab(base);
let pebble: Pebble;
before(async () => {
  pebble = await lab.pebble('pebble');
});
after(() => lab.stop());

test('ACME over TLS: a directory behind a certificate that is not in ACME_CA_BUNDLE fails the handshake; no account or order is made', async () => {
  // Another CA's certificate for the very same name and address: only its key differs from Pebble's.
  const other = await createSelfSigned(['localhost'], { ips: ['127.0.0.1'], organization: 'certwrangler test: not the CA' });
  const wrongBundle = join(base, 'not-the-ca.pem');
  writeFileSync(wrongBundle, other.cert);
  const env = {
    DATA_DIR: join(base, 'data'),
    CERTS_DIR: join(base, 'live'),
    WEBROOT_DIR: lab.webroot,
    DOMAINS: 'tls.example.com',
    STATUS_ADDR: 'off',
    LOG_LEVEL: 'silent',
    ...pebbleEnv(pebble, 'production'),
  };

  const refused = await passWithOrders({ ...env, ACME_CA_BUNDLE: wrongBundle });
  const result = refused.report.results.find((r) => r.name === 'tls.example.com');
  assert.equal(result?.outcome, 'failed', JSON.stringify(result));
  assert.match(result?.error ?? '', /self[- ]signed certificate|unable to verify|unable to get local issuer|certificate/i);
  assert.equal(refused.orders, 0);
  const answered = [...refused.requests.keys()].filter((k) => /^\d/.test(k));
  assert.deepEqual(answered, [], 'the CA answered no request at all: nothing was sent past the handshake');
  assert.ok(refused.requests.has('DEPTH_ZERO_SELF_SIGNED_CERT GET /dir'), `the directory request failed the handshake: ${JSON.stringify([...refused.requests])}`);
  for (const f of filesUnder(join(base, 'data', 'accounts')).filter((p) => p.endsWith('account.json'))) {
    assert.equal(JSON.parse(readFileSync(f, 'utf8')).url, '', 'no account URL was ever given to us');
  }

  const trusted = await passWithOrders(env);
  assert.equal(trusted.orders, 1, JSON.stringify(trusted.report.results));
  assert.equal(trusted.report.results.find((r) => r.name === 'tls.example.com')?.issued, true);
});
