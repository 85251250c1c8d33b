import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatusApp, isLoopback, type StatusServerOptions } from '../../src/status/server.js';
import { StatusBook, healthOf } from '../../src/status/book.js';
import { Metrics, pathShape } from '../../src/status/metrics.js';
import { renderPage } from '../../src/status/page.js';
import { RequestBook } from '../../src/requests.js';
import { createLogger } from '../../src/log.js';
import { postWebhook, webhookBody } from '../../src/events/webhook.js';
import type { CertEvent } from '../../src/events/events.js';
import type { PassReport } from '../../src/reconciler.js';
import { startReceiver } from '../support/receiver.js';
import { rawRequest } from '../support/http.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const DAY = 86_400_000;
const NOW = new Date('2027-03-01T00:00:00Z');

function report(results: Partial<PassReport['results'][number]>[]): PassReport {
  return {
    startedAt: NOW.toISOString(),
    finishedAt: NOW.toISOString(),
    ok: true,
    errors: [],
    refused: [],
    results: results.map((r) => ({ name: 'a.example', names: ['a.example'], sources: ['DOMAINS'], decision: { action: 'none', reason: 'UpToDate', message: 'up to date' }, outcome: 'ok', orders: 0, pushed: false, placeholder: false, ...r })),
  };
}

const TOKEN = 'unit-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

async function serve(opts: Partial<StatusServerOptions>) {
  const full: StatusServerOptions = {
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    book: new StatusBook('test'),
    metrics: new Metrics(),
    requests: new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-req-'))), { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com'] }),
    reconcile: async () => report([]),
    log: createLogger('silent'),
    ...opts,
  };
  const server = createStatusApp(full).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(r)) };
}

const put = (url: string, headers: Record<string, string> = AUTH) =>
  fetch(`${url}/api/certificates/x.example.com`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ names: ['x.example.com'] }) });

test('status API: every change needs the token, on a loopback address too; reading needs none', async () => {
  const s = await serve({});
  try {
    const r = await put(s.url, {});
    assert.equal(r.status, 401);
    assert.match(((await r.json()) as { error: string }).error, /Bearer <token>.*DATA_DIR\/status-token/);
    assert.equal((await fetch(`${s.url}/api/reconcile`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${s.url}/api/certificates/x.example.com`, { method: 'DELETE' })).status, 401);
    assert.equal((await put(s.url)).status, 202);
    assert.equal((await fetch(`${s.url}/api/status`)).status, 200);
  } finally {
    await s.close();
  }
});

test('status API on loopback: a Host that is not this endpoint (DNS rebinding) is refused with 421, reading included', async () => {
  const s = await serve({});
  try {
    for (const [host, method, path] of [
      ['evil.example', 'GET', '/api/status'],
      [`evil.example:${s.port}`, 'GET', '/'],
      [`evil.example:${s.port}`, 'POST', '/api/reconcile'],
      [`evil.example:${s.port}`, 'DELETE', '/api/certificates/x.example.com'],
      [`127.0.0.1.nip.io:${s.port}`, 'GET', '/api/status'],
      ['', 'GET', '/api/status'],
    ] as const) {
      const r = await rawRequest(s.port, path, { method, host, headers: AUTH });
      assert.equal(r.status, 421, `${method} ${path} Host: ${host}`);
      assert.match(JSON.parse(r.body.toString()).error, /is not this endpoint.*DNS rebinding/);
    }
    // Another port is an SSH tunnel's (-L 8000:127.0.0.1:9180), not a rebinding: the name is what matters.
    for (const host of [`127.0.0.1:${s.port}`, `localhost:${s.port}`, `LOCALHOST:${s.port}`, 'localhost:8000', '127.0.0.1']) {
      assert.equal((await rawRequest(s.port, '/api/status', { host })).status, 200, host);
    }
  } finally {
    await s.close();
  }
});

test('status API: a change from another site (Origin, Sec-Fetch-Site) is refused even with the token; the same origin is not', async () => {
  const s = await serve({});
  const host = `127.0.0.1:${s.port}`;
  try {
    for (const headers of [
      { origin: 'http://evil.example' },
      { origin: `http://localhost:${s.port}` },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ] as Record<string, string>[]) {
      const r = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host, headers: { ...AUTH, ...headers } });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.match(JSON.parse(r.body.toString()).error, /^refused: a (cross-site|same-site) request/);
    }
    for (const headers of [{ origin: `http://${host}` }, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }, {}] as Record<string, string>[]) {
      assert.equal((await rawRequest(s.port, '/api/reconcile', { method: 'POST', host, headers: { ...AUTH, ...headers } })).status, 202, JSON.stringify(headers));
    }
  } finally {
    await s.close();
  }
});

test('status API: on a non-loopback address, changes need STATUS_TOKEN; without one configured they are refused and say so', async () => {
  const none = await serve({ host: '0.0.0.0', token: undefined });
  try {
    const r = await put(none.url);
    assert.equal(r.status, 403);
    assert.match(((await r.json()) as { error: string }).error, /set STATUS_TOKEN/);
    assert.equal((await rawRequest(Number(new URL(none.url).port), '/api/status', { host: 'status.internal.example' })).status, 200, 'off loopback, any Host: the token guards changes');
    assert.equal((await fetch(`${none.url}/api/reconcile`, { method: 'POST' })).status, 403);
    assert.equal((await fetch(`${none.url}/metrics`)).status, 200, 'reading needs no token');
  } finally {
    await none.close();
  }
  const token = 'a-long-enough-token-0123';
  const withToken = await serve({ host: '0.0.0.0', token });
  // (put() sends the unit tests' token by default: here it is the wrong one.)
  try {
    assert.equal((await put(withToken.url, {})).status, 401);
    assert.equal((await put(withToken.url)).status, 401);
    assert.equal((await put(withToken.url, { authorization: 'Bearer wrong-token-of-some-length' })).status, 401);
    assert.equal((await put(withToken.url, { authorization: `Bearer ${token}` })).status, 202);
  } finally {
    await withToken.close();
  }
});

test('status API: bad input gets a clear error naming what would be valid', async () => {
  const s = await serve({});
  try {
    const cases: [string, RequestInit, RegExp][] = [
      ['/api/certificates/x.example.com', { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: '{"names":' }, /not valid JSON/],
      ['/api/certificates/x.example.com', { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: '{"names":[]}' }, /non-empty list of DNS names/],
      ['/api/certificates/x.example.com', { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: '{"names":["y.example.com"]}' }, /first name: "x.example.com" is not among/],
      ['/api/certificates/x.example.org', { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: '{"names":["x.example.org"]}' }, /outside ALLOWED_DOMAINS/],
      ['/api/certificates/x.example.com?wait=abc', { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: '{"names":["x.example.com"]}' }, /whole seconds from 0 to 600/],
    ];
    for (const [path, init, re] of cases) {
      const r = await fetch(`${s.url}${path}`, init);
      assert.equal(r.status, 400, path);
      assert.match(((await r.json()) as { error: string }).error, re);
    }
  } finally {
    await s.close();
  }
});

test('isLoopback', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) assert.equal(isLoopback(h), false, h);
});

test('health: expired, last tenth of life, failing, pending, ok', () => {
  const life = (ageDays: number, days = 90) => ({ notBefore: new Date(NOW.getTime() - ageDays * DAY).toISOString(), notAfter: new Date(NOW.getTime() + (days - ageDays) * DAY).toISOString() });
  const row = { name: 'a', names: ['a'], sources: [], decision: { action: 'none', reason: '', message: '' }, kind: 'production' as const };
  assert.equal(healthOf({ ...row, ...life(91) }, NOW), 'expired');
  assert.equal(healthOf({ ...row, ...life(82) }, NOW), 'expiring');
  assert.equal(healthOf({ ...row, ...life(80) }, NOW), 'ok');
  assert.equal(healthOf({ ...row, ...life(10), lastError: 'x' }, NOW), 'failing');
  assert.equal(healthOf({ ...row, ...life(10), kind: 'self-signed' }, NOW), 'pending');
  assert.equal(healthOf(row, NOW), 'pending');
});

test('status book: a quiet pass keeps the last action; a certificate no longer wanted leaves the page', () => {
  const book = new StatusBook('t');
  book.record(report([{ decision: { action: 'issue', reason: 'NoLocalCopy', message: 'no certificate yet' }, orders: 1, issued: true, kind: 'production', notAfter: new Date(NOW.getTime() + 60 * DAY).toISOString(), notBefore: NOW.toISOString() }, { name: 'b.example', names: ['b.example'] }]));
  book.record(report([{}]));
  const s = book.snapshot(NOW);
  assert.deepEqual(s.certificates.map((c) => c.name), ['a.example']);
  assert.deepEqual(s.certificates[0]!.lastAction, { action: 'issued', outcome: 'ok', at: NOW.toISOString() });
  assert.equal(s.certificates[0]!.kind, 'production', 'kept from the pass that learned it');
});

test('page: every value is escaped', () => {
  const book = new StatusBook('<v>');
  book.record(report([{ name: '<script>x</script>', error: '<b>', outcome: 'failed', decision: { action: 'issue', reason: 'Renew', message: '"quoted" & <tag>' } }]));
  const html = renderPage(book.snapshot(NOW));
  assert.ok(!html.includes('<script>x'));
  assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
  assert.ok(html.includes('&quot;quoted&quot; &amp; &lt;tag&gt;'));
});

test('metrics path labels drop identifiers', () => {
  assert.equal(pathShape('https://acme-v02.api.letsencrypt.org/acme/authz-v3/123456789'), '/acme/authz-v3/:id');
  assert.equal(pathShape('https://127.0.0.1:14000/authZ/vg5svCMG3XqsVTWp9TEVtxSyCXj0hRSeDoiA_WBTG4E'), '/authZ/:id');
  assert.equal(pathShape('https://127.0.0.1:14000/order-plz'), '/order-plz');
  assert.equal(pathShape('http://rancher:8080/v2-beta/projects/1a5/certificates/1c3?action=update'), '/v2-beta/projects/:id/certificates/:id?action=update');
  assert.equal(pathShape('http://rancher:8080/v2-beta/projects/1a5/certificates?limit=1000&marker=m1'), '/v2-beta/projects/:id/certificates');
});

const EVENT: CertEvent = { type: 'failed', name: 'a.example.com', names: ['a.example.com'], at: NOW.toISOString(), reason: 'NoLocalCopy', error: 'authorization invalid', nextAttempt: '2027-03-01T01:00:00.000Z' };

test('webhook: WEBHOOK_FORMAT=slack sends an incoming-webhook message; a 500 is retried, a 400 is not', async () => {
  let calls = 0;
  const r = await startReceiver(() => (++calls === 1 ? 500 : 200));
  try {
    await postWebhook(EVENT, { url: `${r.url}/services/T0/B0/secret`, format: 'slack', timeoutMs: 2000, retryBaseMs: 10 });
    assert.equal(r.received.length, 2, 'retried once after the 500');
    const body = JSON.parse(r.received[1]!.body) as { text: string };
    assert.deepEqual(Object.keys(body), ['text']);
    assert.match(body.text, /a\.example\.com: failed \(NoLocalCopy\): authorization invalid; next attempt 2027-03-01T01:00:00.000Z/);
    assert.deepEqual(webhookBody(EVENT, 'json'), { source: 'certwrangler', event: 'failed', certificate: 'a.example.com', names: ['a.example.com'], at: EVENT.at, reason: 'NoLocalCopy', error: 'authorization invalid', nextAttempt: EVENT.nextAttempt, message: 'a.example.com: failed (NoLocalCopy): authorization invalid; next attempt 2027-03-01T01:00:00.000Z' });
  } finally {
    await r.close();
  }
  const refusing = await startReceiver(() => 400);
  try {
    await assert.rejects(postWebhook(EVENT, { url: `${refusing.url}/services/T0/B0/secret`, format: 'json', timeoutMs: 2000, retryBaseMs: 10 }), (e: Error) => /answered 400 \(attempt 1 of 3\)/.test(e.message) && !e.message.includes('secret'));
    assert.equal(refusing.received.length, 1);
  } finally {
    await refusing.close();
  }
});

test('a foreign certificate within 14 days of expiry: expiring on the page and in /api/status, an alert, kind "foreign" in the metrics', async () => {
  const book = new StatusBook('t');
  const notAfter = new Date(NOW.getTime() + 10 * DAY).toISOString();
  const foreign = { name: 'legacy.example', names: ['legacy.example'], decision: { action: 'none' as const, reason: 'ForeignExpiring' as const, message: 'orchestrator holds a certificate certwrangler does not manage, and it expires in 10 days' }, outcome: 'foreign' as const, foreign: true, notAfter, notBefore: new Date(NOW.getTime() - 80 * DAY).toISOString() };
  const calm = { ...foreign, name: 'calm.example', names: ['calm.example'], decision: { ...foreign.decision, reason: 'Foreign' as const }, notAfter: new Date(NOW.getTime() + 40 * DAY).toISOString() };
  const r = report([foreign, calm]);
  book.record(r);
  const s = book.snapshot(NOW);
  const row = s.certificates.find((c) => c.name === 'legacy.example')!;
  assert.equal(row.health, 'expiring');
  assert.equal(row.foreign, true);
  assert.equal(s.certificates.find((c) => c.name === 'calm.example')!.health, 'ok', 'a foreign certificate far from expiry is fine');
  assert.deepEqual(s.alerts, ["legacy.example: the orchestrator's certificate, which certwrangler does not manage, expires in 10 days (" + notAfter + '): renew it yourself, or list it in ADOPT_EXISTING']);
  assert.match(renderPage(s), /data-name="legacy\.example" data-health="expiring"[\s\S]*foreign<br><span class="muted">not managed, never written/);
  const m = new Metrics();
  m.recordPass(r, (n) => book.row(n, NOW)?.health);
  assert.match(await m.text(), /certwrangler_certificate_decisions\{action="none",reason="ForeignExpiring"\} 1/);
  assert.match(await m.text(), new RegExp(`certwrangler_certificate_expiration_timestamp_seconds\\{name="legacy\\.example",kind="foreign"\\} ${Date.parse(notAfter) / 1000}`));
});

test('pushed, balancer reload pending: the row and the page say so', () => {
  const book = new StatusBook('t');
  book.record(report([{ decision: { action: 'push', reason: 'NotInOrchestrator', message: 'not in orchestrator' }, pushed: true, pendingReloads: ['https-lb'] }]));
  const s = book.snapshot(NOW);
  assert.deepEqual(s.certificates[0]!.pendingReloads, ['https-lb']);
  assert.match(renderPage(s), /pushed, balancer reload pending: https-lb/);
});

test('page: which CA issued a certificate and why, and whether the balancers serve it (VERIFY)', () => {
  const book = new StatusBook('t');
  book.record(report([{ decision: { action: 'issue', reason: 'Renew', message: 'due' }, issued: true, ca: 'https://second.ca.test/dir', caWhy: 'fallback: https://first.ca.test/dir unreachable', served: false }]));
  const html = renderPage(book.snapshot(NOW), NOW);
  assert.match(html, /from https:\/\/second\.ca\.test\/dir \(fallback: https:\/\/first\.ca\.test\/dir unreachable\)/);
  assert.match(html, /not served by every balancer \(VERIFY\)/);
});

test('page and /api/status: each rate-limit budget in use, with the share of new certificates, what is held back and when it refills', () => {
  const book = new StatusBook('test');
  const r = report([]);
  r.budgets = [
    {
      directory: 'https://acme-v02.api.letsencrypt.org/directory',
      rows: [{ limit: 'certificatesPerRegisteredDomain', scope: 'example.com', used: 41, max: 50, newMax: 40, heldBack: 10, refillsAt: new Date(NOW.getTime() + 3 * DAY).toISOString() }],
    },
  ];
  book.record(r);
  const snap = book.snapshot(NOW);
  assert.deepEqual(snap.lastPass?.budgets, r.budgets, '/api/status carries them as they are');
  const html = renderPage(snap, NOW);
  assert.match(html, /<h2>Rate limits<\/h2>.*NEW_ORDER_BUDGET/s);
  assert.match(html, /<td>certificatesPerRegisteredDomain<\/td><td>example\.com<\/td><td>41 of 50<\/td><td>40<\/td><td>10<\/td><td><time datetime="2027-03-04T00:00:00\.000Z"/);
  book.record(report([]));
  assert.doesNotMatch(renderPage(book.snapshot(NOW), NOW), /Rate limits/, 'nothing in use, no table');
});
