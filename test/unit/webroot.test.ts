import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { rawRequest } from '../support/http.js';

const root = mkdtempSync(join(tmpdir(), 'cw-webroot-'));
const challenges = join(root, '.well-known', 'acme-challenge');
// Bytes a careless server would mangle: a trailing newline, a NUL, a non-ASCII byte.
const TOKEN = 'tok_EN-123';
const CONTENT = Buffer.from([...Buffer.from('tok_EN-123.keyauth'), 0x00, 0xff, 0x0a]);
let server: Server;
let port: number;

before(async () => {
  mkdirSync(challenges, { recursive: true });
  writeFileSync(join(challenges, TOKEN), CONTENT);
  writeFileSync(join(challenges, '.hidden'), 'secret');
  mkdirSync(join(challenges, 'adir'));
  writeFileSync(join(root, 'outside.txt'), 'outside');
  writeFileSync(join(root, '.well-known', 'other'), 'other');
  server = await listenWebroot(createWebroot(root), 0, '127.0.0.1');
  port = (server.address() as { port: number }).port;
});
after(() => server.close());

test('webroot: a token is served byte for byte, as text/plain, never cached', async () => {
  const r = await rawRequest(port, `/.well-known/acme-challenge/${TOKEN}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, CONTENT);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
  assert.equal(r.headers['cache-control'], 'no-store');
});

test('webroot: HEAD answers with headers and no body', async () => {
  const r = await rawRequest(port, `/.well-known/acme-challenge/${TOKEN}`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers['content-length']), CONTENT.length);
  assert.equal(r.body.length, 0);
});

test('webroot: /healthz is 200', async () => {
  assert.equal((await rawRequest(port, '/healthz')).status, 200);
});

test('webroot: everything else is 404 — no listing, traversal, dotfiles or redirects', async () => {
  const paths = [
    '/.well-known/acme-challenge/missing-token',
    '/.well-known/acme-challenge/',
    '/.well-known/acme-challenge',
    '/.well-known/acme-challenge/adir',
    '/.well-known/acme-challenge/.hidden',
    '/.well-known/acme-challenge/..%2f..%2foutside.txt',
    '/.well-known/acme-challenge/..%2Fother',
    '/.well-known/acme-challenge/%2e%2e/%2e%2e/outside.txt',
    '/.well-known/acme-challenge/%252e%252e%252foutside.txt',
    '/.well-known/acme-challenge/..\\..\\outside.txt',
    '/.well-known/acme-challenge/../../outside.txt',
    '/.well-known/acme-challenge/%74ok_EN-123',
    `/.well-known/acme-challenge/${TOKEN}/`,
    `/.well-known/acme-challenge/${TOKEN}.txt`,
    `/.well-known/acme-challenge/${TOKEN}%00`,
    '/.well-known/acme-challenge/tok%20en',
    `/.well-known/acme-challenge/${'a'.repeat(256)}`,
    `/${'x'.repeat(10 * 1024)}`,
    `/.well-known/acme-challenge/${'b'.repeat(10 * 1024)}`,
    '/.well-known/other',
    '/outside.txt',
    '/',
    '//.well-known/acme-challenge/' + TOKEN,
    '/.well-known//acme-challenge/' + TOKEN,
    '/.WELL-KNOWN/acme-challenge/' + TOKEN,
  ];
  for (const p of paths) {
    const r = await rawRequest(port, p);
    assert.equal(r.status, 404, `${p.slice(0, 80)} → ${r.status}`);
    assert.equal(r.body.toString(), 'not found\n', p);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers.location, undefined);
    assert.ok(!r.body.includes('outside') && !r.body.includes('secret'), p);
  }
});

test('webroot: a request line that is not valid HTTP (raw space or non-ASCII byte) is refused by the parser', async () => {
  for (const p of ['/.well-known/acme-challenge/tok en', '/.well-known/acme-challenge/tók']) {
    assert.equal((await rawRequest(port, p)).status, 400, p);
  }
});

test('webroot: only GET and HEAD', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    assert.equal((await rawRequest(port, `/.well-known/acme-challenge/${TOKEN}`, { method })).status, 404, method);
  }
  const head = await rawRequest(port, '/.well-known/acme-challenge/missing-token', { method: 'HEAD' });
  assert.equal(head.status, 404);
  assert.equal(head.body.length, 0);
});

test('webroot: a query string does not change the answer', async () => {
  const r = await rawRequest(port, `/.well-known/acme-challenge/${TOKEN}?x=1`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, CONTENT);
});

test('webroot: a token served again comes from memory with the same answer; a removed token stops being served', async () => {
  const token = 'hot_token-1';
  writeFileSync(join(challenges, token), 'hot.keyauth');
  const first = await rawRequest(port, `/.well-known/acme-challenge/${token}`);
  await new Promise((r) => setTimeout(r, 50)); // the background read that fills memory
  const again = await rawRequest(port, `/.well-known/acme-challenge/${token}`);
  for (const r of [first, again]) {
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hot.keyauth');
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(Number(r.headers['content-length']), 'hot.keyauth'.length);
  }
  const head = await rawRequest(port, `/.well-known/acme-challenge/${token}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);

  unlinkSync(join(challenges, token));
  // Memory is re-checked against the disk once an entry is a second old: within that plus one request it is gone.
  const deadline = Date.now() + 3000;
  let status = 200;
  while (status === 200 && Date.now() < deadline) {
    status = (await rawRequest(port, `/.well-known/acme-challenge/${token}`)).status;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 404);
});

test('webroot: a miss is never remembered: a token written just after a flood of probes for it is served on the next request', async () => {
  const token = 'late_token-1';
  const probes = await Promise.all(Array.from({ length: 50 }, () => rawRequest(port, `/.well-known/acme-challenge/${token}`)));
  assert.deepEqual([...new Set(probes.map((r) => r.status))], [404]);
  writeFileSync(join(challenges, token), 'late.keyauth');
  const r = await rawRequest(port, `/.well-known/acme-challenge/${token}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'late.keyauth');
  // And the other way: a token removed is a 404 again, never a remembered one (it was never served).
  const other = 'late_token-2';
  writeFileSync(join(challenges, other), 'x');
  unlinkSync(join(challenges, other));
  assert.equal((await rawRequest(port, `/.well-known/acme-challenge/${other}`)).status, 404);
});
