import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { startNginx, siteFile, type Nginx } from '../support/nginx.js';
import { freePort } from '../support/ports.js';
import { rawRequest } from '../support/http.js';

const dir = mkdtempSync(join(tmpdir(), 'cw-nginx-'));
const root = join(dir, 'www');
const TOKEN = 'Zx_9-token';
const CONTENT = `${TOKEN}.thumbprint`;
let webrootNginx: Nginx, trafficNginx: Nginx;
let ourWebroot: Server, app: Server;
let webrootPort: number, trafficPort: number;

before(async () => {
  mkdirSync(join(root, '.well-known', 'acme-challenge'), { recursive: true, mode: 0o755 });
  writeFileSync(join(root, '.well-known', 'acme-challenge', TOKEN), CONTENT, { mode: 0o644 });
  writeFileSync(join(root, '.well-known', 'acme-challenge', '.hidden'), 'secret');
  writeFileSync(join(root, 'outside.txt'), 'outside');

  webrootPort = await freePort();
  webrootNginx = await startNginx(join(dir, 'n1'), siteFile('webroot.conf', [['listen 80;', `listen 127.0.0.1:${webrootPort};`], ['root /var/www/acme;', `root ${root};`]]), webrootPort);

  ourWebroot = await listenWebroot(createWebroot(root), 0, '127.0.0.1');
  app = createServer((_req, res) => res.end('from the app')).listen(0, '127.0.0.1');
  await new Promise((r) => app.once('listening', r));
  trafficPort = await freePort();
  trafficNginx = await startNginx(
    join(dir, 'n2'),
    siteFile('traffic-manager.conf', [
      ['server webroot:8080;', `server 127.0.0.1:${(ourWebroot.address() as { port: number }).port};`],
      ['server app:8080;', `server 127.0.0.1:${(app.address() as { port: number }).port};`],
      ['listen 80;', `listen 127.0.0.1:${trafficPort};`],
    ]),
    trafficPort,
  );
});

after(async () => {
  await Promise.all([webrootNginx?.stop(), trafficNginx?.stop()]);
  ourWebroot?.close();
  app?.close();
});

test('nginx/webroot.conf: serves a token byte for byte as text/plain, and /healthz', async () => {
  const r = await rawRequest(webrootPort, `/.well-known/acme-challenge/${TOKEN}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), CONTENT);
  assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal((await rawRequest(webrootPort, `/.well-known/acme-challenge/${TOKEN}`, { method: 'HEAD' })).status, 200);
  assert.equal((await rawRequest(webrootPort, '/healthz')).status, 200);
});

test('nginx/webroot.conf: everything else is 404 (or 400/414 where nginx refuses the request line itself)', async () => {
  for (const p of [
    '/.well-known/acme-challenge/missing',
    '/.well-known/acme-challenge/',
    '/.well-known/acme-challenge/.hidden',
    '/.well-known/acme-challenge/..%2f..%2foutside.txt',
    '/.well-known/acme-challenge/%2e%2e/%2e%2e/outside.txt',
    '/.well-known/acme-challenge/%252e%252e%252foutside.txt',
    '/.well-known/acme-challenge/..\\..\\outside.txt',
    `/.well-known/acme-challenge/${'a'.repeat(256)}`,
    `/${'x'.repeat(10 * 1024)}`,
    '/outside.txt',
    '/',
  ]) {
    const r = await rawRequest(webrootPort, p);
    assert.ok([404, 400, 414].includes(r.status), `${p.slice(0, 60)} → ${r.status}`);
    assert.ok(!r.body.includes('outside') && !r.body.includes('secret'));
  }
});

test('nginx/traffic-manager.conf: the challenge path reaches the webroot, everything else the app', async () => {
  const token = await rawRequest(trafficPort, `/.well-known/acme-challenge/${TOKEN}`, { host: 'app.example.com' });
  assert.equal(token.status, 200);
  assert.equal(token.body.toString(), CONTENT);
  const missing = await rawRequest(trafficPort, '/.well-known/acme-challenge/nope', { host: 'app.example.com' });
  assert.equal(missing.status, 404, 'a missing token is answered by the webroot, not the app');
  for (const p of ['/', '/index.html', '/.well-known/other']) {
    const r = await rawRequest(trafficPort, p, { host: 'app.example.com' });
    assert.equal(r.body.toString(), 'from the app', p);
  }
});

test('nginx: no version in the Server header or on error pages, in either shipped file', async () => {
  for (const [port, path] of [
    [webrootPort, '/healthz'],
    [webrootPort, '/nothing-here'],
    [trafficPort, '/.well-known/acme-challenge/nope'],
  ] as const) {
    const r = await rawRequest(port, path, { host: 'app.example.com' });
    assert.equal(r.headers.server, 'nginx', `${port} ${path}: ${r.headers.server}`);
    assert.ok(!/nginx\/\d/.test(r.body.toString()), `${path}: the body names no version`);
  }
  // An error page nginx writes itself (the request line is refused before any location).
  const long = await rawRequest(webrootPort, `/${'x'.repeat(10 * 1024)}`);
  assert.ok(!/nginx\/\d/.test(long.headers.server ?? '') && !/nginx\/\d/.test(long.body.toString()), `${long.status}: ${long.body.toString().slice(0, 200)}`);
});

test('nginx/traffic-manager.conf: its webroot upstream is the port the webroot in the image listens on', () => {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
  const imagePort = Number(/^ENV .*\bPORT=(\d+)/m.exec(dockerfile)?.[1]);
  assert.ok(/^USER node$/m.test(dockerfile), 'the image runs as node, so its webroot cannot bind 80');
  assert.equal(Number(/^EXPOSE (\d+)/m.exec(dockerfile)?.[1]), imagePort);
  const conf = readFileSync(new URL('../../nginx/traffic-manager.conf', import.meta.url), 'utf8');
  const upstream = /upstream certwrangler_webroot \{\s*server [^:;\s]+:(\d+);/.exec(conf);
  assert.equal(Number(upstream?.[1]), imagePort);
  const balancer = readFileSync(new URL('../../rancher-compose/traffic-manager/rancher-compose.yml', import.meta.url), 'utf8');
  // The stack's name is a variable (CERTWRANGLER_STACK, default certwrangler): see test/unit/rancher-compose.test.ts.
  assert.match(balancer, new RegExp(`service: \\$\\{CERTWRANGLER_STACK:-certwrangler\\}/certwrangler-webroot\\s+target_port: ${imagePort}\\b`), 'the Rancher balancer agrees');
});
