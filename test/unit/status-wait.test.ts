/**
 * Issue 23: what a deploy pipeline reads from the status API when it waits (`?wait=`): the HTTP status
 * tells how the certificate (or the pass) ended, and bad or refused requests say what would be valid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatusApp, type StatusServerOptions } from '../../src/status/server.js';
import { StatusBook } from '../../src/status/book.js';
import { Metrics } from '../../src/status/metrics.js';
import { RequestBook } from '../../src/requests.js';
import { createLogger } from '../../src/log.js';
import type { CertResult, PassReport } from '../../src/reconciler.js';
import { rawRequest } from '../support/http.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const TOKEN = 'status-wait-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

function reportWith(result: Partial<CertResult> | undefined, ok = true): PassReport {
  const base: CertResult = { name: 'x.example.com', names: ['x.example.com'], sources: ['api'], decision: { action: 'issue', reason: 'NoLocalCopy', message: 'no local copy' }, outcome: 'ok', orders: 1, pushed: true, placeholder: false };
  return { startedAt: '', finishedAt: '', ok, errors: [], refused: [], results: result ? [{ ...base, ...result }] : [] };
}

async function serve(opts: Partial<StatusServerOptions>) {
  const app = createStatusApp({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    book: new StatusBook('test'),
    metrics: new Metrics(),
    requests: new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-wait-'))), { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com'] }),
    reconcile: async () => reportWith(undefined),
    log: createLogger('silent'),
    ...opts,
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, close: () => new Promise((r) => server.close(r)) };
}

const put = (url: string, query = '?wait=5', names = ['x.example.com']) =>
  fetch(`${url}/api/certificates/x.example.com${query}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: JSON.stringify({ names }) });

test('status API: PUT ?wait= answers how the certificate ended: 200 issued, 202 placeholder or still waiting, 502 failed, 409 foreign, 500 when the pass did not report it', async () => {
  const cases: [Partial<CertResult> | undefined, number][] = [
    [{ outcome: 'ok', kind: 'production' }, 200],
    [{ outcome: 'ok', kind: 'self-signed' }, 202],
    [{ outcome: 'failed', error: 'the CA refused' }, 502],
    [{ outcome: 'foreign' }, 409],
    [{ outcome: 'waiting' }, 202],
    [undefined, 500],
  ];
  for (const [result, status] of cases) {
    const s = await serve({ reconcile: async () => reportWith(result) });
    try {
      const r = await put(s.url);
      assert.equal(r.status, status, JSON.stringify(result));
      const body = (await r.json()) as { certificate: string; names: string[]; result: unknown };
      assert.equal(body.certificate, 'x.example.com');
      assert.deepEqual(body.names, ['x.example.com']);
      assert.equal(body.result === null, result === undefined, 'the pass\'s result is returned when there is one');
    } finally {
      await s.close();
    }
  }
});

test('status API: without ?wait= a PUT is accepted at once (202), created or updated; the pass is asked for with the name', async () => {
  const why: string[] = [];
  const s = await serve({ reconcile: async (w) => (why.push(w), reportWith(undefined)) });
  try {
    const first = await put(s.url, '');
    assert.equal(first.status, 202);
    assert.match(((await first.json()) as { message: string }).message, /^requested; a pass will start now$/);
    assert.equal((await put(s.url, '?wait=0', ['x.example.com', 'www.x.example.com'])).status, 202);
    assert.deepEqual(why, ['certificate x.example.com requested through the API', 'certificate x.example.com requested through the API']);
  } finally {
    await s.close();
  }
});

test('status API: a pass that does not end within ?wait= is answered 202, saying where to look', async () => {
  const s = await serve({ reconcile: () => new Promise<PassReport>(() => undefined) });
  try {
    const r = await put(s.url, '?wait=1');
    assert.equal(r.status, 202);
    assert.match(((await r.json()) as { message: string }).message, /not finished within 1 s; see \/api\/status/);
    const p = await fetch(`${s.url}/api/reconcile?wait=1`, { method: 'POST', headers: AUTH });
    assert.equal(p.status, 202);
    assert.match(((await p.json()) as { message: string }).message, /did not finish within 1 s/);
  } finally {
    await s.close();
  }
});

test('status API: POST /api/reconcile?wait= is 200 for a good pass and 502 for a failed one, with the report; a pass that throws is 202', async () => {
  for (const [reconcile, status] of [
    [async () => reportWith(undefined, true), 200],
    [async () => reportWith(undefined, false), 502],
    [async () => Promise.reject(new Error('orchestrator down')), 202],
  ] as [() => Promise<PassReport>, number][]) {
    const s = await serve({ reconcile });
    try {
      const r = await fetch(`${s.url}/api/reconcile?wait=3`, { method: 'POST', headers: AUTH });
      assert.equal(r.status, status);
      const body = (await r.json()) as { ok?: boolean; accepted?: boolean };
      if (status === 202) assert.equal(body.accepted, true);
      else assert.equal(body.ok, status === 200);
    } finally {
      await s.close();
    }
  }
  const s = await serve({});
  try {
    const r = await fetch(`${s.url}/api/reconcile`, { method: 'POST', headers: AUTH });
    assert.equal(r.status, 202);
    assert.deepEqual(await r.json(), { accepted: true, message: 'a pass will start now, or right after the one running' });
  } finally {
    await s.close();
  }
});

test('status API: ?wait= beyond the longest allowed, or not whole seconds, is refused naming the range', async () => {
  const s = await serve({ maxWaitSec: 30 });
  try {
    for (const q of ['?wait=31', '?wait=-1', '?wait=1.5', '?wait=', '?wait=1&wait=2']) {
      const r = await fetch(`${s.url}/api/reconcile${q}`, { method: 'POST', headers: AUTH });
      assert.equal(r.status, 400, q);
      assert.match(((await r.json()) as { error: string }).error, /is not valid: whole seconds from 0 to 30$/);
    }
    assert.equal((await fetch(`${s.url}/api/reconcile?wait=0`, { method: 'POST', headers: AUTH })).status, 202);
  } finally {
    await s.close();
  }
});

test('status API: DELETE of a name the API never asked for is 404; of one from DOMAINS or a label, 409 naming where it comes from', async () => {
  const book = new StatusBook('test');
  book.record(reportWith({ name: 'x.example.com', sources: ['DOMAINS', 'label:web/app'], outcome: 'ok' }));
  const s = await serve({ book });
  try {
    const r = await fetch(`${s.url}/api/certificates/X.example.com`, { method: 'DELETE', headers: AUTH });
    assert.equal(r.status, 409);
    assert.equal(((await r.json()) as { error: string }).error, 'x.example.com comes from DOMAINS, label:web/app, not from this API: remove it there');
    const n = await fetch(`${s.url}/api/certificates/y.example.com`, { method: 'DELETE', headers: AUTH });
    assert.equal(n.status, 404);
    assert.equal(((await n.json()) as { error: string }).error, 'y.example.com was not requested through this API');
  } finally {
    await s.close();
  }
});

test('status API: an unknown path is 404 listing what is answered; a Host or Origin too long to show is cut', async () => {
  const s = await serve({});
  try {
    const r = await fetch(`${s.url}/api/nothing`);
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: string }).error, /^not found: GET \/, \/api\/status, \/healthz, \/readyz, \/metrics; POST \/api\/reconcile; PUT or DELETE \/api\/certificates\/<name>$/);
    const long = `${'h'.repeat(150)}.example`;
    const h = await rawRequest(s.port, '/api/status', { host: long });
    assert.equal(h.status, 421);
    assert.ok(JSON.parse(h.body.toString()).error.startsWith(`Host "${'h'.repeat(100)}…" is not this endpoint`));
    const o = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host: `127.0.0.1:${s.port}`, headers: { ...AUTH, origin: `http://${long}` } });
    assert.equal(o.status, 403);
    assert.ok(JSON.parse(o.body.toString()).error.includes(`(Origin "http://${'h'.repeat(93)}…")`));
  } finally {
    await s.close();
  }
});

test('status API: bound to localhost it answers to 127.0.0.1 and [::1] too; bound to ::1, to [::1]', async () => {
  for (const [bound, hosts] of [
    ['localhost', ['127.0.0.1', '[::1]', 'localhost', 'localhost.']],
    ['::1', ['[::1]', 'localhost']],
  ] as [string, string[]][]) {
    const s = await serve({ host: bound });
    try {
      for (const host of hosts) assert.equal((await rawRequest(s.port, '/api/status', { host })).status, 200, `${bound}: ${host}`);
      assert.equal((await rawRequest(s.port, '/api/status', { host: '[::2]' })).status, 421);
    } finally {
      await s.close();
    }
  }
});
