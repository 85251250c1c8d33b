/**
 * Issue 17 item 0: certificates without a subject Common Name (Let's Encrypt's `tlsserver` and `shortlived`
 * profiles) at every step: parsing, the store, a certificate kept before it is stored, Rancher's push,
 * `plan`, the status page and the metrics. The end-to-end issuance of such a certificate from a CA is in
 * e2e/ari.test.ts (the ACME front's `tlsserver` profile).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { LocalStore, type IssuedRecord } from '../../src/certs/store.js';
import { StatusBook } from '../../src/status/book.js';
import { Metrics } from '../../src/status/metrics.js';
import { renderPage } from '../../src/status/page.js';
import { passWithOrders, runCli } from '../support/harness.js';
import { computedFields, simPool } from '../support/rancher-sim.js';
import { selfSignedWithoutCn, testCa } from '../support/no-cn.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-nocn-'));
const ca = testCa('certwrangler no-CN test CA');
const sims = simPool();
// Never contacted: every certificate here is in place, so no pass orders.
const DIRECTORY = 'https://127.0.0.1:9/dir';
after(() => sims.closeAll());

test('a certificate without a CN parses: no common name, an empty subject, its names from the SANs', () => {
  const leaf = parseCert(ca.leaf(['a.nocn.example.com', 'b.nocn.example.com']).cert);
  assert.equal(leaf.commonName, undefined);
  assert.equal(leaf.subject, '');
  assert.equal(leaf.issuer, 'CN=certwrangler no-CN test CA');
  assert.deepEqual([...leaf.names], ['a.nocn.example.com', 'b.nocn.example.com']);
  assert.equal(leaf.selfSigned, false);
  const own = parseCert(selfSignedWithoutCn(['c.nocn.example.com', '127.0.0.1']).cert);
  assert.deepEqual([...own.names], ['c.nocn.example.com', '127.0.0.1']);
  assert.equal(own.issuer, '');
  assert.equal(own.selfSigned, true, 'an empty issuer equal to an empty subject, verified by its own key');
});

test('the store writes and reads a certificate without a CN', async () => {
  const store = new LocalStore(new FilesStore(join(base, 'store')));
  await store.init();
  const made = ca.leaf(['store.nocn.example.com']);
  await store.write({ name: 'store.nocn.example.com', names: ['store.nocn.example.com'], key: made.key, cert: made.cert, chain: ca.cert, kind: 'production', directoryUrl: DIRECTORY });
  const r = await store.read('store.nocn.example.com');
  assert.equal(r.state, 'present');
  if (r.state === 'present') {
    assert.equal(r.keyMatches, true);
    assert.deepEqual([...r.info.names], ['store.nocn.example.com']);
  }
});

test('store it first: a certificate the CA issued that its pass could not store is stored by the next pass, without an order; one that cannot be used is set aside, never deleted', async () => {
  const store = new LocalStore(new FilesStore(join(base, 'kept')));
  await store.init();
  const name = 'kept.nocn.example.com';
  const made = ca.leaf([name]);
  const rec: IssuedRecord = { name, names: [name], kind: 'production', directoryUrl: DIRECTORY, orderUrl: 'https://ca.test/order/1', key: made.key, pem: made.cert + ca.cert, issuedAt: new Date().toISOString() };
  await store.keepIssued(rec);
  assert.equal(statSync(join(store.certDir(name), 'issued.json')).mode & 0o777, 0o600, 'the kept download holds a key: 0600');
  // `plan` changes nothing.
  assert.equal((await store.read(name, { recover: false })).state, 'absent');
  const r = await store.read(name);
  assert.equal(r.state, 'present');
  if (r.state === 'present') {
    assert.equal(r.bundle.cert, made.cert);
    assert.equal(r.bundle.chain, ca.cert);
    assert.equal(r.meta.orderUrl, 'https://ca.test/order/1');
  }
  assert.equal(existsSync(join(store.certDir(name), 'issued.json')), false, 'promoted into the set');

  // A download whose key is not its certificate's is the CA's certificate all the same: kept aside.
  const other = ca.leaf([name]);
  await store.keepIssued({ ...rec, pem: other.cert, key: made.key });
  const again = await store.read(name);
  assert.equal(again.state === 'present' && again.bundle.cert, made.cert, 'the good set stays');
  assert.equal(readdirSync(store.certDir(name)).filter((f) => f.startsWith('issued-unusable-')).length, 1);
});

test('a certificate without a CN in service: pushed to Rancher, shown by plan, the status page and the metrics', async () => {
  const s = await sims.start();
  const name = 'app.nocn.example.com';
  const names = [name, 'www.app.nocn.example.com'];
  const dataDir = join(base, 'pass', 'data');
  const store = new LocalStore(new FilesStore(dataDir));
  await store.init();
  const made = ca.leaf(names, { days: 6 });
  await store.write({ name, names, key: made.key, cert: made.cert, chain: ca.cert, kind: 'production', directoryUrl: DIRECTORY });
  const env = { DATA_DIR: dataDir, WEBROOT_DIR: join(base, 'pass', 'www'), LOG_LEVEL: 'silent', ...s.env, ACME_DIRECTORY_URL: DIRECTORY, STAGING: 'false', DOMAINS: names.join(',') };

  const { report, orders } = await passWithOrders(env, { settleTimeoutMs: 5000 });
  assert.equal(orders, 0);
  assert.equal(report.ok, true, JSON.stringify(report.results.map((r) => r.error)));
  const r = report.results[0]!;
  assert.equal(r.decision.reason, 'NotInOrchestrator');
  assert.equal(r.pushed, true);
  const pushed = s.certByName(name)!;
  assert.equal(pushed.cert, made.cert);
  assert.equal(pushed.state, 'active');
  assert.equal(computedFields(pushed.cert).CN, null, 'Rancher computes no CN for it');

  const plan = await runCli(['plan'], env);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, new RegExp(`${name.replace(/\./g, '\\.')}\\s+none\\s+up to date`));

  const book = new StatusBook('test');
  book.record(report);
  const metrics = new Metrics();
  metrics.recordPass(report, (n) => book.row(n)?.health);
  const page = renderPage(book.snapshot());
  assert.ok(page.includes(name));
  assert.equal(book.row(name)?.health, 'ok');
  assert.match(await metrics.text(), new RegExp(`certwrangler_certificate_expiration_timestamp_seconds\\{name="${name.replace(/\./g, '\\.')}",kind="production"\\} ${Date.parse(r.notAfter!) / 1000}`));
});
