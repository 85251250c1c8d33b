/**
 * Issue 23 (mutation run of src/status/server.ts): what an operator, a script or a browser sees of the status
 * endpoint that the other status tests leave unchecked: headers that keep the page out of caches, the bodies of
 * the health and readiness checks, the body limit, the errors a broken DATA_DIR gives, the log lines of each
 * change, and on a loopback address which Host names are this endpoint.
 */
import { FilesStore } from '../../src/stores/files/files-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import http from 'node:http';
import { createStatusApp, isLoopback, listenStatus, type StatusServerOptions } from '../../src/status/server.js';
import { StatusBook } from '../../src/status/book.js';
import { Metrics } from '../../src/status/metrics.js';
import { RequestBook } from '../../src/requests.js';
import { createLogger } from '../../src/log.js';
import type { PassReport } from '../../src/reconciler.js';
import { rawRequest } from '../support/http.js';

const TOKEN = 'status-mutants-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const EMPTY: PassReport = { startedAt: '', finishedAt: '', ok: true, errors: [], refused: [], results: [] };

/** The lines the manager logs, parsed (pino's JSON). */
function logLines() {
  const lines: { level: string; msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, log: createLogger('info', stream) };
}

async function serve(opts: Partial<StatusServerOptions> & { dataDir?: string } = {}) {
  const { lines, log } = logLines();
  const why: string[] = [];
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'cw-smut-'));
  const app = createStatusApp({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    book: new StatusBook('test'),
    metrics: new Metrics(),
    requests: new RequestBook(new FilesStore(dataDir), { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com'] }),
    reconcile: async (w) => (why.push(w), EMPTY),
    log,
    ...opts,
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, why, lines, close: () => new Promise((r) => server.close(r)) };
}

const putX = (url: string, body: string = JSON.stringify({ names: ['x.example.com'] })) =>
  fetch(`${url}/api/certificates/X.example.com`, { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body });

test('status endpoint: the page and /api/status are never cached (no-store, no ETag) and do not say what serves them', async () => {
  const book = new StatusBook('9.9.9-test');
  const s = await serve({ book });
  try {
    for (const path of ['/', '/api/status']) {
      const r = await fetch(`${s.url}${path}`);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('cache-control'), 'no-store', path);
      assert.equal(r.headers.get('etag'), null, path);
      assert.equal(r.headers.get('x-powered-by'), null, path);
      const text = await r.text();
      if (path === '/') {
        assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
        assert.match(text, /9\.9\.9-test/);
      } else assert.equal(JSON.parse(text).version, '9.9.9-test');
    }
  } finally {
    await s.close();
  }
});

test('status endpoint: /healthz says ok; /readyz is 503 until the first pass is recorded, then ready; /metrics is Prometheus text', async () => {
  const book = new StatusBook('test');
  const metrics = new Metrics();
  const s = await serve({ book, metrics });
  try {
    const h = await fetch(`${s.url}/healthz`);
    assert.equal(h.status, 200);
    assert.match(h.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await h.text(), 'ok\n');
    const before = await fetch(`${s.url}/readyz`);
    assert.equal(before.status, 503);
    assert.match(before.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await before.text(), 'the first pass has not finished (leader)\n');
    book.record(EMPTY);
    const after = await fetch(`${s.url}/readyz`);
    assert.equal(after.status, 200);
    assert.equal(await after.text(), 'ready (leader)\n');
    const m = await fetch(`${s.url}/metrics`);
    assert.equal(m.headers.get('content-type'), metrics.contentType);
    assert.match(await m.text(), /^# HELP /m);
  } finally {
    await s.close();
  }
});

test('status API: a body over 16 kB is refused (413) and nothing is requested; a body that is not JSON says so', async () => {
  const s = await serve();
  try {
    const big = JSON.stringify({ names: ['x.example.com'], pad: 'p'.repeat(17 * 1024) });
    const r = await putX(s.url, big);
    assert.equal(r.status, 413);
    assert.match(((await r.json()) as { error: string }).error, /too large/i);
    const fits = JSON.stringify({ names: ['x.example.com'], pad: 'p'.repeat(15 * 1024) });
    assert.equal((await putX(s.url, fits)).status, 202, 'a body just under the limit is taken');
    const bad = await putX(s.url, '{"names": [');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /^the body is not valid JSON: /);
  } finally {
    await s.close();
  }
});

test('status API: a DATA_DIR the request book cannot read is a 500 naming the file, and logged as an error', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cw-smut-'));
  mkdirSync(join(dataDir, 'requests.json'));
  const s = await serve({ dataDir });
  try {
    for (const [method, path] of [['PUT', '/api/certificates/x.example.com'], ['DELETE', '/api/certificates/x.example.com']]) {
      const r = await fetch(`${s.url}${path}`, { method, headers: { 'content-type': 'application/json', ...AUTH }, ...(method === 'PUT' ? { body: JSON.stringify({ names: ['x.example.com'] }) } : {}) });
      assert.equal(r.status, 500, method);
      const error = ((await r.json()) as { error: string }).error;
      assert.match(error, /requests\.json is unreadable/, method);
      assert.ok(s.lines.some((l) => l.level === 'error' && l.msg === `status API: ${error}` && l.error === error), `${method}: logged as an error, with the error as a field`);
    }
    assert.deepEqual(s.why, [], 'no pass was asked for');
  } finally {
    await s.close();
  }
});

test('status API: each change is logged (requested, updated, dropped) and asks for a pass saying why', async () => {
  const s = await serve();
  try {
    assert.equal((await putX(s.url)).status, 202);
    assert.equal((await putX(s.url, JSON.stringify({ names: ['x.example.com', 'www.x.example.com'] }))).status, 202);
    const del = await fetch(`${s.url}/api/certificates/X.example.com`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    assert.equal((await fetch(`${s.url}/api/reconcile`, { method: 'POST', headers: AUTH })).status, 202);
    assert.deepEqual(s.why, ['certificate x.example.com requested through the API', 'certificate x.example.com requested through the API', 'certificate x.example.com dropped through the API', 'requested through the API']);
    const info = s.lines.filter((l) => l.level === 'info').map((l) => [l.msg, l.cert, l.source]);
    assert.deepEqual(info, [
      ['x.example.com: requested through the API', 'x.example.com', 'api'],
      ['x.example.com: request updated through the API', 'x.example.com', 'api'],
      ['x.example.com: no longer requested through the API; its certificate and files are kept', 'x.example.com', 'api'],
    ]);
    const second = await fetch(`${s.url}/api/certificates/x.example.com`, { method: 'DELETE', headers: AUTH });
    assert.equal(second.status, 404, 'dropped once; the second DELETE finds nothing');
  } finally {
    await s.close();
  }
});

test('status API on loopback: the Host may carry a port, an upper-case name or a trailing dot; anything else that is not a host name is refused, and the refusal names both addresses that are answered', async () => {
  const s = await serve();
  try {
    for (const host of [`127.0.0.1:${s.port}`, 'LOCALHOST', 'localhost.', ' localhost ', `localhost:1`]) {
      assert.equal((await rawRequest(s.port, '/api/status', { host })).status, 200, JSON.stringify(host));
    }
    for (const host of ['localhost:123456', 'localhost:', 'localhost:port', 'x localhost', '[localhost]', 'localhost:80:80', '[::1', 'user@localhost']) {
      const r = await rawRequest(s.port, '/api/status', { host });
      assert.equal(r.status, 421, JSON.stringify(host));
      assert.equal(JSON.parse(r.body.toString()).error, `Host ${JSON.stringify(host.trim())} is not this endpoint: on a loopback STATUS_ADDR only http://127.0.0.1:${s.port}/ or http://localhost:${s.port}/ is answered (another name pointing here is how a web page reaches it: DNS rebinding)`);
    }
  } finally {
    await s.close();
  }
  // Bound to ::1: the refusal writes the address in brackets, as a URL needs it.
  const v6 = await serve({ host: '::1' });
  try {
    const r = await rawRequest(v6.port, '/api/status', { host: 'evil.example' });
    assert.equal(r.status, 421);
    assert.match(JSON.parse(r.body.toString()).error, new RegExp(`only http://\\[::1\\]:${v6.port}/ or http://localhost:${v6.port}/ is answered`));
  } finally {
    await v6.close();
  }
});

test('status API on loopback: the address a connection arrived on is this endpoint too (STATUS_ADDR names another loopback address); a different loopback address is not', async () => {
  // Bound, as far as the app knows, to 127.0.0.5; the connection arrives on 127.0.0.1.
  const s = await serve({ host: '127.0.0.5' });
  try {
    assert.equal((await rawRequest(s.port, '/api/status', { host: `127.0.0.1:${s.port}` })).status, 200);
    assert.equal((await rawRequest(s.port, '/api/status', { host: '127.0.0.5' })).status, 200);
    assert.equal((await rawRequest(s.port, '/api/status', { host: '127.0.0.2' })).status, 421);
  } finally {
    await s.close();
  }
});

test('status API: Sec-Fetch-Site and Origin are judged separately; an Origin that is not a URL is refused', async () => {
  const s = await serve();
  const host = `127.0.0.1:${s.port}`;
  try {
    for (const headers of [{ origin: 'not a url' }, { 'sec-fetch-site': 'same-origin', origin: 'http://evil.example' }, { origin: `https://${host.toUpperCase()}x` }] as Record<string, string>[]) {
      const r = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host, headers: { ...AUTH, ...headers } });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.match(JSON.parse(r.body.toString()).error, /^refused: a cross-site request \(Origin ".*"\) may not change anything here$/);
    }
    const upper = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host, headers: { ...AUTH, origin: `http://LOCALHOST:${s.port}` } });
    assert.equal(upper.status, 403, 'Origin localhost against Host 127.0.0.1');
    const same = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host: `LOCALHOST:${s.port}`, headers: { ...AUTH, origin: `http://localhost:${s.port}` } });
    assert.equal(same.status, 202, 'the same origin, whatever the case of the Host');
    const site = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host, headers: { ...AUTH, 'sec-fetch-site': 'cross-site' } });
    assert.equal(JSON.parse(site.body.toString()).error, 'refused: a cross-site request (Sec-Fetch-Site) may not change anything here; use the API from a script or `certwrangler request`/`certwrangler reconcile`');
  } finally {
    await s.close();
  }
});

test('isLoopback: only 127.0.0.0/8, ::1 and localhost', () => {
  for (const h of ['127.0.0.1', '127.255.255.254', '::1', 'localhost']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '::', '128.0.0.1', '10.127.0.1', 'localhost.example.com', '127.example.com', '::2', '']) assert.equal(isLoopback(h), false, h);
});

test('listenStatus: serves on the address asked for; a port in use is an error, not a hang', async () => {
  const { log } = logLines();
  const opts: StatusServerOptions = { host: '127.0.0.1', port: 0, token: TOKEN, book: new StatusBook('test'), metrics: new Metrics(), requests: new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-smut-'))), { dnsProvider: false, onePerName: false, allowedSuffixes: [] }), reconcile: async () => EMPTY, log };
  const server = await listenStatus(opts);
  try {
    const port = (server.address() as AddressInfo).port;
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    await assert.rejects(listenStatus({ ...opts, port }), /EADDRINUSE/);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

/** A request to another loopback address than 127.0.0.1, with the Host header given. */
function requestTo(address: string, port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address, port, path, headers: { host }, timeout: 5000 }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.on('error', reject);
    req.end();
  });
}

test('status API bound to localhost answers to 127.0.0.1 and [::1] by name, whichever loopback address the connection came in on; bound to 127.0.0.1, not to [::1]', async () => {
  const { log } = logLines();
  const base: StatusServerOptions = { host: 'localhost', port: 0, token: TOKEN, book: new StatusBook('test'), metrics: new Metrics(), requests: new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-smut-'))), { dnsProvider: false, onePerName: false, allowedSuffixes: [] }), reconcile: async () => EMPTY, log };
  const server = createStatusApp(base).listen(0, '127.0.0.2');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  try {
    for (const host of ['127.0.0.1', '[::1]', 'localhost', `127.0.0.2:${port}`]) assert.equal(await requestTo('127.0.0.2', port, '/api/status', host), 200, host);
    assert.equal(await requestTo('127.0.0.2', port, '/api/status', '127.0.0.3'), 421);
  } finally {
    await new Promise((r) => server.close(r));
  }
  const s = await serve();
  try {
    assert.equal((await rawRequest(s.port, '/api/status', { host: '[::1]' })).status, 421, 'bound to 127.0.0.1: ::1 is another address');
    assert.equal((await rawRequest(s.port, '/api/status', { host: 'a]localhost' })).status, 421);
    assert.equal((await rawRequest(s.port, '/api/status', { host: 'localhost]x' })).status, 421);
  } finally {
    await s.close();
  }
});

test('status API on a dual-stack socket: a connection to 127.0.0.1 (seen as ::ffff:127.0.0.1) may name 127.0.0.1, and no other IPv4 address', async () => {
  const { log } = logLines();
  const opts: StatusServerOptions = { host: '::1', port: 0, token: TOKEN, book: new StatusBook('test'), metrics: new Metrics(), requests: new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-smut-'))), { dnsProvider: false, onePerName: false, allowedSuffixes: [] }), reconcile: async () => EMPTY, log };
  const server = createStatusApp(opts).listen(0, '::');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  try {
    assert.equal((await rawRequest(port, '/api/status', { host: `127.0.0.1:${port}` })).status, 200);
    assert.equal((await rawRequest(port, '/api/status', { host: '127.0.0.2' })).status, 421);
    const r = await rawRequest(port, '/api/status', { host: 'evil.example' });
    assert.equal(r.status, 421);
    assert.match(JSON.parse(r.body.toString()).error, new RegExp(`only http://\\[::1\\]:${port}/ or http://localhost:${port}/ is answered`));
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('status API: a Host or Origin of exactly 100 characters is shown whole; a token not at the start of "Bearer" is refused', async () => {
  const s = await serve();
  try {
    const host = `${'h'.repeat(92)}.example`;
    assert.equal(host.length, 100);
    const h = await rawRequest(s.port, '/api/status', { host });
    assert.ok(JSON.parse(h.body.toString()).error.startsWith(`Host "${host}" is not this endpoint`));
    const origin = `http://${'o'.repeat(85)}.example`;
    assert.equal(origin.length, 100);
    const o = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host: `127.0.0.1:${s.port}`, headers: { ...AUTH, origin } });
    assert.equal(JSON.parse(o.body.toString()).error, `refused: a cross-site request (Origin "${origin}") may not change anything here`);
    const x = await rawRequest(s.port, '/api/reconcile', { method: 'POST', host: `127.0.0.1:${s.port}`, headers: { authorization: `xBearer ${TOKEN}` } });
    assert.equal(x.status, 401);
  } finally {
    await s.close();
  }
});

test('status API: ?wait= of several digits and exactly the longest allowed are taken; a pass that ends within the wait is answered with its outcome', async () => {
  const report: PassReport = { ...EMPTY, results: [
    { name: 'other.example.com', names: ['other.example.com'], sources: ['api'], decision: { action: 'issue', reason: 'NoLocalCopy', message: 'no local copy' }, outcome: 'failed', orders: 1, pushed: false, placeholder: false },
    { name: 'x.example.com', names: ['x.example.com'], sources: ['api'], decision: { action: 'issue', reason: 'NoLocalCopy', message: 'no local copy' }, outcome: 'ok', kind: 'production', orders: 1, pushed: true, placeholder: false },
  ] };
  const s = await serve({ maxWaitSec: 30, reconcile: () => new Promise((r) => setTimeout(() => r(report), 100)) });
  try {
    for (const q of ['?wait=10', '?wait=30']) {
      const r = await fetch(`${s.url}/api/reconcile${q}`, { method: 'POST', headers: AUTH });
      assert.equal(r.status, 200, q);
    }
    const p = await fetch(`${s.url}/api/certificates/x.example.com?wait=2`, { method: 'PUT', headers: { 'content-type': 'application/json', ...AUTH }, body: JSON.stringify({ names: ['x.example.com'] }) });
    assert.equal(p.status, 200, 'its own result (ok), not the first one (failed)');
    const body = (await p.json()) as { result: { name: string }; status: unknown };
    assert.equal(body.result.name, 'x.example.com');
    assert.equal(body.status, null, 'no row on the page yet: null, not left out');
  } finally {
    await s.close();
  }
});

test('status API: a PUT with no JSON body is refused saying what to send', async () => {
  const s = await serve();
  try {
    const r = await fetch(`${s.url}/api/certificates/x.example.com`, { method: 'PUT', headers: AUTH });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: string }).error, /non-empty list of DNS names/);
  } finally {
    await s.close();
  }
});

test('status API: DELETE of a name the page still lists as the API\'s, but no longer requested, is 404, not 409', async () => {
  const book = new StatusBook('test');
  book.record({ ...EMPTY, results: [{ name: 'gone.example.com', names: ['gone.example.com'], sources: ['api'], decision: { action: 'none', reason: 'UpToDate', message: 'up to date' }, outcome: 'ok', orders: 0, pushed: false, placeholder: false }] });
  const s = await serve({ book });
  try {
    const r = await fetch(`${s.url}/api/certificates/gone.example.com`, { method: 'DELETE', headers: AUTH });
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { error: string }).error, 'gone.example.com was not requested through this API');
  } finally {
    await s.close();
  }
});
