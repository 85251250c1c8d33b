/**
 * Issue 22's issuance row against Pebble: validation is waited for on the order (one request a look instead of
 * one per authorization), a failed validation still names the CA's reason and only the names that failed (the
 * ledger's failed-validation count), and an order takes the key made for it ahead.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acmeLab, passWithOrders, pebbleEnv, type AcmeLab } from '../support/harness.js';
import type { Pebble } from '../support/pebble.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { issueCertificate } from '../../src/acme/issue.js';
import { generatePrivateKey } from '../../src/certs/keys.js';
import { keyMatchesCert } from '../../src/certs/parse.js';

const base = mkdtempSync(join(tmpdir(), 'cw-order-poll-'));
let lab: AcmeLab;
let pebble: Pebble;

before(async () => {
  lab = acmeLab(base);
  pebble = await lab.pebble('pebble');
  // Pebble resolves this name to an address nothing answers on: its validation fails.
  const r = await fetch(`${pebble.dnsManagementUrl}/add-a`, { method: 'POST', body: JSON.stringify({ host: 'broken.poll-example.com.', addresses: ['127.0.0.2'] }) });
  assert.equal(r.status, 200);
});
after(async () => {
  await lab.stop();
  rmSync(base, { recursive: true, force: true });
});

const count = (requests: Map<string, number>, re: RegExp) => [...requests].filter(([k]) => re.test(k)).reduce((n, [, v]) => n + v, 0);

test('ten names: each authorization is read once, the order is polled for their validation, and the certificate is issued', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `n${i}.poll-example.com`);
  const env = { DOMAINS: names.join(','), KEY_TYPE: 'rsa-2048', ...pebbleEnv(pebble, 'production'), ORCHESTRATOR: 'files', DATA_DIR: join(base, 'ten'), CERTS_DIR: join(base, 'ten', 'live'), WEBROOT_DIR: lab.webroot };
  const { report, orders, requests } = await passWithOrders(env);
  const r = report.results[0]!;
  assert.equal(r.issued, true, r.error);
  assert.equal(orders, 1);
  assert.equal(count(requests, /^200 POST \/authZ\//), 10, `one read of each authorization, no polling of them: ${JSON.stringify([...requests])}`);
  assert.ok(count(requests, /^200 POST \/my-order\//) >= 1, 'the order was polled');
  const live = join(base, 'ten', 'live', names[0]!);
  assert.ok(keyMatchesCert(readFileSync(join(live, 'privkey.pem'), 'utf8'), readFileSync(join(live, 'cert.pem'), 'utf8')));
  assert.deepEqual(readdirSync(join(lab.webroot, '.well-known', 'acme-challenge')), [], 'every token was removed');
});

test('a name that fails validation: the order is invalid, the error is the CA reason for that name, and only it counts as a failed validation', async () => {
  const env = { DOMAINS: 'fine.poll-example.com,broken.poll-example.com', ...pebbleEnv(pebble, 'production'), ORCHESTRATOR: 'files', DATA_DIR: join(base, 'broken'), CERTS_DIR: join(base, 'broken', 'live'), WEBROOT_DIR: lab.webroot };
  const { report, orders } = await passWithOrders(env);
  const r = report.results[0]!;
  assert.equal(orders, 1);
  assert.equal(r.outcome, 'failed');
  assert.match(r.error!, /^broken\.poll-example\.com: authorization invalid: urn:ietf:params:acme:error:connection /);
  const ledgerDir = join(base, 'broken', 'ledger');
  const ledger = JSON.parse(readFileSync(join(ledgerDir, readdirSync(ledgerDir)[0]!), 'utf8')) as LedgerData;
  assert.deepEqual(
    ledger.failedAuthorizations.map((f) => f.name),
    ['broken.poll-example.com'],
    'the name that validated is not counted',
  );
  assert.deepEqual(readdirSync(join(lab.webroot, '.well-known', 'acme-challenge')), [], 'every token was removed');
});

test('an order given a key made ahead keeps it with the order, and certifies it', async () => {
  const env = { DOMAINS: 'ahead.poll-example.com', ...pebbleEnv(pebble, 'production'), ORCHESTRATOR: 'files', DATA_DIR: join(base, 'ahead'), CERTS_DIR: join(base, 'ahead', 'live'), WEBROOT_DIR: lab.webroot };
  const m = await assemble(loadConfig(env), createLogger('silent'));
  const client = await m.accounts.client(pebble.directoryUrl);
  const made = await generatePrivateKey('rsa-2048');
  const kept: string[] = [];
  const issued = await issueCertificate(client, ['ahead.poll-example.com'], {
    keyType: 'rsa-2048',
    freshKey: Promise.resolve(made),
    solvers: { 'http-01': m.solver },
    challenge: 'http-01',
    remember: async ({ key }) => void kept.push(key),
  });
  assert.equal(issued.key, made, 'the key made ahead, not a new one');
  assert.deepEqual(kept, [made], 'kept with the order before any challenge was answered');
  assert.ok(keyMatchesCert(made, issued.cert));
});
