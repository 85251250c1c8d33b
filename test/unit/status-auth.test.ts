/**
 * Issue 23: every change through the status API needs the token, for each route that changes something,
 * on an address other than loopback (no Host check there: the token is the only guard). Each refused
 * request is shown to have changed nothing: the requested certificate is still requested, no pass ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatusApp } from '../../src/status/server.js';
import { StatusBook } from '../../src/status/book.js';
import { Metrics } from '../../src/status/metrics.js';
import { RequestBook } from '../../src/requests.js';
import { createLogger } from '../../src/log.js';
import type { PassReport } from '../../src/reconciler.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const TOKEN = 'status-auth-token-0123456789';
const NAME = 'kept.example.com';
const EMPTY: PassReport = { startedAt: '', finishedAt: '', ok: true, errors: [], refused: [], results: [] };

/** A status API bound (as far as it knows) to every address, with NAME already requested through it. */
async function serve(token: string | undefined) {
  const requests = new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-auth-'))), { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com'] });
  await requests.put(NAME, [NAME]);
  const passes: string[] = [];
  const app = createStatusApp({
    host: '0.0.0.0',
    port: 0,
    token,
    book: new StatusBook('test'),
    metrics: new Metrics(),
    requests,
    reconcile: async (why) => (passes.push(why), EMPTY),
    log: createLogger('silent'),
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const requested = async () => (await requests.wanted()).certs.map((c) => c.name);
  return { url, passes, requested, close: () => new Promise((r) => server.close(r)) };
}

const CHANGES: [string, string][] = [
  ['DELETE', `/api/certificates/${NAME}`],
  ['POST', '/api/reconcile'],
  ['POST', '/api/reconcile?wait=1'],
  ['PUT', '/api/certificates/new.example.com'],
];

const send = (url: string, [method, path]: [string, string], headers: Record<string, string>) =>
  fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(method === 'PUT' ? { body: JSON.stringify({ names: ['new.example.com'] }) } : {}) });

test('status API off loopback, STATUS_TOKEN set: DELETE, POST and PUT without the token or with a wrong one are refused (401) and change nothing', async () => {
  const s = await serve(TOKEN);
  try {
    const wrong: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Bearer ${TOKEN.toUpperCase()}` },
      { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      { authorization: TOKEN },
      { authorization: 'Bearer ' },
      { 'x-status-token': TOKEN },
    ];
    for (const change of CHANGES) {
      for (const headers of wrong) {
        const r = await send(s.url, change, headers);
        assert.equal(r.status, 401, `${change.join(' ')} with ${JSON.stringify(headers)}`);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer');
        assert.match(((await r.json()) as { error: string }).error, /missing or wrong token/);
      }
    }
    assert.deepEqual(await s.requested(), [NAME], 'the certificate is still requested, and nothing new is');
    assert.deepEqual(s.passes, [], 'no pass was started');
    // The right token does what the wrong ones could not.
    const del = await send(s.url, CHANGES[0]!, { authorization: `Bearer ${TOKEN}` });
    assert.equal(del.status, 204);
    assert.deepEqual(await s.requested(), []);
    assert.equal((await send(s.url, CHANGES[1]!, { authorization: `Bearer ${TOKEN}` })).status, 202);
    assert.equal(s.passes.length, 2, 'one pass for the drop, one asked for');
  } finally {
    await s.close();
  }
});

test('status API off loopback, no STATUS_TOKEN: every change is refused (403, saying how to turn changes on), whatever it sends, and changes nothing', async () => {
  const s = await serve(undefined);
  try {
    for (const change of CHANGES) {
      for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }, { authorization: 'Bearer undefined' }, { authorization: 'Bearer ' }] as Record<string, string>[]) {
        const r = await send(s.url, change, headers);
        assert.equal(r.status, 403, `${change.join(' ')} with ${JSON.stringify(headers)}`);
        assert.match(((await r.json()) as { error: string }).error, /changes through this API are off: .*set STATUS_TOKEN/);
      }
    }
    assert.deepEqual(await s.requested(), [NAME]);
    assert.deepEqual(s.passes, []);
    assert.equal((await fetch(`${s.url}/api/status`)).status, 200, 'reading still needs no token');
  } finally {
    await s.close();
  }
});
