/** The probe's verdicts, each against a real local HTTP server: what an operator reads for each broken route. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { probeRoute, type ProbeOptions } from '../../src/preflight/probe.js';
import { freePort } from '../support/ports.js';

const BODY = Buffer.from('probe-body-123');
const PATH = '/.well-known/acme-challenge/tok';
let server: Server;
let port: number;

before(async () => {
  server = createServer((req, res) => {
    const host = (req.headers.host ?? '').split(':')[0];
    const last = (req.url ?? '').split('/').at(-1)!;
    if (host === 'ok.test') return res.end(BODY);
    if (host === 'wrong.test') return res.end('<html>welcome to the app</html>');
    if (host === 'hop.test') return res.writeHead(301, { location: `http://ok.test${req.url}` }).end();
    if (host === 'loop-a.test') return res.writeHead(302, { location: `http://loop-b.test${req.url}` }).end();
    if (host === 'loop-b.test') return res.writeHead(302, { location: `http://loop-a.test${req.url}` }).end();
    if (host === 'chain.test') return res.writeHead(302, { location: `/n/${(Number(last) || 0) + 1}` }).end();
    if (host === 'odd-port.test') return res.writeHead(302, { location: `http://ok.test:8443${req.url}` }).end();
    res.writeHead(503, { server: 'app/1.0' }).end('down');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
after(() => server.close());

const opts = (over: Partial<ProbeOptions> = {}): ProbeOptions => ({ httpPort: port, resolvers: undefined, timeoutMs: 2000, resolve: async () => ['127.0.0.1'], ...over });

test('the exact bytes, directly or through a redirect, prove the route', async () => {
  assert.equal(await probeRoute('ok.test', PATH, BODY, opts()), undefined);
  assert.equal(await probeRoute('hop.test', PATH, BODY, opts()), undefined);
});

test('each broken route is reported with what went wrong', async () => {
  assert.match((await probeRoute('wrong.test', PATH, BODY, opts()))!, /wrong.test resolved to 127\.0\.0\.1, 127\.0\.0\.1:\d+: wrong body: got 31 bytes "<html>welcome to the app<\/html>"/);
  assert.match((await probeRoute('other.test', PATH, BODY, opts()))!, /HTTP 503 \(Server: app\/1\.0\)/);
  assert.match((await probeRoute('loop-a.test', PATH, BODY, opts()))!, /^redirect loop: http:\/\/loop-a\.test\/.* → http:\/\/loop-b\.test\/.* → http:\/\/loop-a\.test\//);
  assert.match((await probeRoute('chain.test', PATH, BODY, opts()))!, /^more than 10 redirects/);
  assert.match((await probeRoute('odd-port.test', PATH, BODY, opts()))!, /redirect to port 8443/);
  const closed = await freePort();
  assert.match((await probeRoute('ok.test', PATH, BODY, opts({ httpPort: closed })))!, new RegExp(`ok.test resolved to 127\\.0\\.0\\.1: connection refused on port ${closed}`));
});
