/**
 * More than one CA (issue 19 item 3), with two real Pebbles: the second requires external account binding.
 * The first is killed in the middle of a pass: the certificates not yet issued come from the second in the
 * same pass. Brought back, it gets the renewals again. A fallback certificate is production, so nothing
 * "upgrades" it back. And PREFERRED_CHAIN picks among Pebble's alternate chains (PEBBLE_ALTERNATE_ROOTS).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { observeAcmeRequests } from '../../src/acme/transport.js';
import { splitPemChain } from '../../src/certs/parse.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, assertChainVerifies, passWithOrders, pebbleEnv } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-multica-'));
const lab = acmeLab(base);
const EAB = { kid: 'cw-test-kid', hmacKey: 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' };
let ca1: Pebble;
/** Requires EAB, and offers two alternate chains (for PREFERRED_CHAIN). */
let ca2: Pebble;

before(async () => {
  // One after the other: each picks its free ports just before it binds them.
  ca1 = await lab.pebble('ca1');
  ca2 = await lab.pebble('ca2', { eab: EAB, alternateRoots: 2 });
});
after(() => lab.stop());

const DAY = 86_400_000;
const cnOf = (dn: string) => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1];

/** Orders created ("201 POST /order-plz") per CA, by its directory's port. */
function orderCounter() {
  const byPort = new Map<string, number>();
  const stop = observeAcmeRequests((r) => {
    const u = new URL(r.url);
    if (r.status === '201' && r.method === 'POST' && u.pathname === '/order-plz') byPort.set(u.port, (byPort.get(u.port) ?? 0) + 1);
  });
  return { of: (p: Pebble) => byPort.get(new URL(p.directoryUrl).port) ?? 0, stop };
}

test('the preferred CA dies mid-pass: the rest come from the second (with EAB) in the same pass; back, it gets the renewals again', async () => {
  const env = {
    DATA_DIR: join(base, 'fallback', 'data'),
    CERTS_DIR: join(base, 'fallback', 'live'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    STAGING: 'false',
    ACME_DIRECTORY_URLS: `${ca1.directoryUrl},${ca2.directoryUrl}`,
    ACME_CA_BUNDLE_1: ca1.caBundlePath,
    ACME_CA_BUNDLE_2: ca2.caBundlePath,
    ACME_EAB_KID_2: EAB.kid,
    ACME_EAB_HMAC_KEY_2: EAB.hmacKey,
    // One order at a time, so "mid-pass" is between two certificates.
    ACME_CONCURRENCY: '1',
    KEY_TYPE: 'ecdsa-p256',
    PLACEHOLDERS: 'false',
    DOMAINS: 'a.example.com;b.example.com;c.example.com',
  };
  // The first CA is killed the moment the second certificate's order is created on it.
  const killer = createLogger('info', {
    write: (l: string) => {
      const line = JSON.parse(l) as { cert?: string; action?: string; directory?: string };
      if (line.cert === 'b.example.com' && line.action === 'order' && line.directory === ca1.directoryUrl) void ca1.kill();
    },
  });
  const orders = orderCounter();
  try {
    const first = await passWithOrders(env, {}, killer);
    const by = new Map(first.report.results.map((r) => [r.name, r]));
    assert.equal(first.report.ok, true, JSON.stringify(first.report.results.map((r) => r.error)));
    assert.equal(by.get('a.example.com')!.ca, ca1.directoryUrl);
    assert.equal(by.get('a.example.com')!.caWhy, 'the preferred CA');
    for (const name of ['b.example.com', 'c.example.com']) {
      assert.equal(by.get(name)!.ca, ca2.directoryUrl, name);
      assert.match(by.get(name)!.caWhy!, new RegExp(`^fallback from ${ca1.directoryUrl.replace(/[./]/g, '\\$&')} unreachable or failing: `), name);
      assert.equal(by.get(name)!.kind, 'production');
    }
    assert.match(by.get('c.example.com')!.caWhy!, /passed over until/, 'the dead CA is not waited for again in the same pass');
    assert.equal(orders.of(ca1), 2, 'a, and b before the CA died');
    assert.equal(orders.of(ca2), 2, 'b and c');
    assertChainVerifies(readFileSync(join(env.CERTS_DIR, 'c.example.com', 'fullchain.pem'), 'utf8'), await ca2.root());

    // A certificate from any listed CA is production: nothing is "upgraded" back while CA 1 is away.
    const steady = await passWithOrders(env);
    assert.equal(steady.orders, 0);
    assert.deepEqual(steady.report.results.map((r) => r.decision.reason), ['UpToDate', 'UpToDate', 'UpToDate']);

    // CA 1 is back (a new Pebble: it lost its accounts): the renewals go to it first again.
    await ca1.start();
    const renewAt = new Date(Math.max(...first.report.results.map((r) => Date.parse(r.renewAt!))) + DAY);
    const renewal = await passWithOrders(env, { now: () => renewAt });
    assert.equal(renewal.report.ok, true, JSON.stringify(renewal.report.results.map((r) => r.error)));
    assert.deepEqual(renewal.report.results.map((r) => [r.name, r.ca, r.caWhy]), ['a', 'b', 'c'].map((n) => [`${n}.example.com`, ca1.directoryUrl, 'the preferred CA']));
    assert.equal(orders.of(ca1), 2 + 3);
    assert.equal(orders.of(ca2), 2, 'no more orders at the second CA');
  } finally {
    orders.stop();
  }
});

test('PREFERRED_CHAIN picks the alternate chain whose top certificate has that issuer CN', async () => {
  const root2 = await ca2.rootOf(2);
  const wanted = cnOf(new X509Certificate(root2).subject)!;
  assert.notEqual(wanted, cnOf(new X509Certificate(await ca2.rootOf(0)).subject), 'the default chain ends at another root');
  const env = { DATA_DIR: join(base, 'chain', 'data'), CERTS_DIR: join(base, 'chain', 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...pebbleEnv(ca2, 'production'), ACME_EAB_KID: EAB.kid, ACME_EAB_HMAC_KEY: EAB.hmacKey, KEY_TYPE: 'ecdsa-p256', PLACEHOLDERS: 'false', DOMAINS: 'chain.example.com', PREFERRED_CHAIN: wanted };
  const { report, orders } = await passWithOrders(env);
  assert.equal(report.ok, true, JSON.stringify(report.results.map((r) => r.error)));
  assert.equal(orders, 1);
  const fullchain = readFileSync(join(env.CERTS_DIR, 'chain.example.com', 'fullchain.pem'), 'utf8');
  const top = new X509Certificate(splitPemChain(fullchain).at(-1)!);
  assert.equal(cnOf(top.issuer), wanted);
  assertChainVerifies(fullchain, root2);
});

test('each CA\'s own bundle vouches for that CA only: swapped, neither CA is trusted, nothing is ordered, and the error names the TLS failure', async () => {
  const env = {
    DATA_DIR: join(base, 'swapped', 'data'),
    CERTS_DIR: join(base, 'swapped', 'live'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    STAGING: 'false',
    ACME_DIRECTORY_URLS: `${ca1.directoryUrl},${ca2.directoryUrl}`,
    // Each CA gets the other's bundle: when all bundles were pooled, both would still have been trusted.
    ACME_CA_BUNDLE_1: ca2.caBundlePath,
    ACME_CA_BUNDLE_2: ca1.caBundlePath,
    ACME_EAB_KID_2: EAB.kid,
    ACME_EAB_HMAC_KEY_2: EAB.hmacKey,
    KEY_TYPE: 'ecdsa-p256',
    PLACEHOLDERS: 'false',
    DOMAINS: 'swapped.example.com',
  };
  const run = await passWithOrders(env);
  assert.equal(run.orders, 0);
  const r = run.report.results[0]!;
  assert.notEqual(r.issued, true);
  assert.match(r.error ?? '', /self[- ]signed|certificate|unable to verify/i, JSON.stringify(r));
});
