/**
 * Issue 23 (mutation run of src/webroot/server.ts): what the challenge port answers that the other webroot
 * tests leave unchecked: a symlink or a folder at a token's name is never followed, a challenge "folder" that
 * is a file is a plain 404, /healthz by its fast path, a token changed on disk is served changed once its copy
 * in memory is a second old, and the server listens on every address when none is given.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { rawRequest } from '../support/http.js';

const root = mkdtempSync(join(tmpdir(), 'cw-webroot-m-'));
const challenges = join(root, '.well-known', 'acme-challenge');
let server: Server;
let port: number;
const get = (path: string, method = 'GET') => rawRequest(port, path, { method });

before(async () => {
  mkdirSync(challenges, { recursive: true });
  writeFileSync(join(root, 'secret.key'), '-----BEGIN PRIVATE KEY-----\nnot for the CA\n');
  symlinkSync(join(root, 'secret.key'), join(challenges, 'linked_Token'));
  mkdirSync(join(challenges, 'folder_Token'));
  server = await listenWebroot(createWebroot(root), 0);
  port = (server.address() as { port: number }).port;
});
after(() => server.close());

test('webroot: a symlink at a token\'s name is 404 every time it is asked for (it could point at a key); so is a folder', async () => {
  for (let i = 0; i < 3; i++) {
    for (const token of ['linked_Token', 'folder_Token']) {
      for (const method of ['GET', 'HEAD']) {
        const r = await get(`/.well-known/acme-challenge/${token}`, method);
        assert.equal(r.status, 404, `${method} ${token} #${i}`);
        assert.ok(!r.body.toString().includes('PRIVATE KEY'));
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('webroot: /healthz answers "ok" as plain text, never cached, with or without a query; HEAD without a body; other methods 404', async () => {
  for (const path of ['/healthz', '/healthz?probe=1']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.body.toString(), 'ok\n');
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['x-powered-by'], undefined);
  }
  const head = await get('/healthz', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = await get('/healthz', method);
    assert.equal(r.status, 404, method);
    assert.equal(r.body.toString(), 'not found\n');
  }
  assert.equal((await get('/healthz/')).status, 404);
  assert.equal((await get('/healthzx')).status, 404);
});

test('webroot: a token rewritten on disk is served with its new bytes once its copy in memory is a second old', async () => {
  const token = 'changing_Token';
  writeFileSync(join(challenges, token), 'first');
  assert.equal((await get(`/.well-known/acme-challenge/${token}`)).body.toString(), 'first');
  await new Promise((r) => setTimeout(r, 50)); // the background read that fills memory
  assert.equal((await get(`/.well-known/acme-challenge/${token}`)).body.toString(), 'first');
  writeFileSync(join(challenges, token), 'second, longer');
  await new Promise((r) => setTimeout(r, 1100));
  let body = '';
  const deadline = Date.now() + 5000;
  while (body !== 'second, longer' && Date.now() < deadline) {
    const r = await get(`/.well-known/acme-challenge/${token}`);
    assert.equal(r.status, 200);
    body = r.body.toString();
    assert.equal(Number(r.headers['content-length']), body.length, 'the length is the body\'s, old or new');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(body, 'second, longer');
});

test('webroot: a challenge "folder" that is a file answers 404, not an error', async () => {
  const other = mkdtempSync(join(tmpdir(), 'cw-webroot-m-'));
  mkdirSync(join(other, '.well-known'));
  writeFileSync(join(other, '.well-known', 'acme-challenge'), 'not a folder');
  const s = await listenWebroot(createWebroot(other), 0, '127.0.0.1');
  try {
    const r = await rawRequest((s.address() as { port: number }).port, '/.well-known/acme-challenge/some_Token');
    assert.equal(r.status, 404);
    assert.equal(r.body.toString(), 'not found\n');
  } finally {
    s.close();
  }
});
