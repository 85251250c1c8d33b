/**
 * Issue 23: what the token pattern alone keeps out. Every file named here really exists in the challenge
 * folder (or beside it), so a 404 can only come from the pattern, not from a missing file; and the HTTP-01
 * solver refuses a CA's token that is not a plain token before it writes anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { WebrootSolver } from '../../src/acme/http01.js';
import { rawRequest } from '../support/http.js';
import { pathsUnder } from '../support/harness.js';

const root = mkdtempSync(join(tmpdir(), 'cw-tokens-'));
const challenges = join(root, '.well-known', 'acme-challenge');
const TOKEN = 'Real_Token-1';
// Real regular files whose names are one character away from a token: a dot, a tilde, a plus, a percent sign.
const NEAR_TOKENS = ['backup.key', `${TOKEN}.txt`, 'privkey.pem', 'a.b', `${TOKEN}~`, `${TOKEN}+1`, 'token%00'];
let server: Server;
let port: number;

before(async () => {
  mkdirSync(challenges, { recursive: true });
  writeFileSync(join(challenges, TOKEN), 'real.keyauth');
  for (const name of NEAR_TOKENS) writeFileSync(join(challenges, name), `-----BEGIN PRIVATE KEY----- ${name}`);
  server = await listenWebroot(createWebroot(root), 0, '127.0.0.1');
  port = (server.address() as { port: number }).port;
});
after(() => server.close());

test('webroot: a real file in the challenge folder whose name is not a token (backup.key, <token>.txt, …) is 404, asked for once or again', async () => {
  assert.equal((await rawRequest(port, `/.well-known/acme-challenge/${TOKEN}`)).status, 200, 'the real token is served');
  for (const name of NEAR_TOKENS) {
    for (const method of ['GET', 'HEAD', 'GET']) {
      const r = await rawRequest(port, `/.well-known/acme-challenge/${name}`, { method });
      assert.equal(r.status, 404, `${method} ${name}`);
      assert.ok(!r.body.toString().includes('PRIVATE KEY'), `${method} ${name} leaked the file`);
    }
  }
});

test('webroot: a token of 255 characters is served (the longest the pattern allows)', async () => {
  const longest = 'y'.repeat(255);
  writeFileSync(join(challenges, longest), 'longest');
  const r = await rawRequest(port, `/.well-known/acme-challenge/${longest}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'longest');
});

test('http-01: present() refuses a token from the CA that is not base64url (../x, a/b, the empty token, ../../../escaped) and writes nothing', async () => {
  const base = mkdtempSync(join(tmpdir(), 'cw-solver-'));
  const webroot = join(base, 'www');
  const solver = new WebrootSolver(webroot);
  for (const token of ['../x', 'a/b', '', '../../../escaped', '..', '.', 'a.b', 'a b', 'x'.repeat(256), 'tok\nen']) {
    await assert.rejects(solver.present('a.example.com', token, 'keyauth'), (e: Error) => {
      assert.match(e.message, /^http-01: the CA sent the token .* which is not 1 to 255 characters of A-Z a-z 0-9 _ - \(RFC 8555 §8\.3\); nothing was written$/, JSON.stringify(token));
      assert.ok(e.message.includes(JSON.stringify(token).slice(0, 40)), `the message names the token: ${e.message}`);
      return true;
    });
    await assert.rejects(solver.cleanup('a.example.com', token), /http-01: the CA sent the token/);
  }
  assert.deepEqual(pathsUnder(base), [], 'nothing written, inside the webroot or out');
  // A long token is shown cut at 40 characters, one of exactly 40 whole.
  await assert.rejects(solver.present('a.example.com', `${'y'.repeat(40)}.`, 'k'), (e: Error) => e.message.includes(`"${'y'.repeat(40)}"…,`));
  await assert.rejects(solver.present('a.example.com', `${'z'.repeat(39)}.`, 'k'), (e: Error) => e.message.includes(`"${'z'.repeat(39)}.",`));
  // The same solver still writes a real token, where the webroot serves it from.
  await solver.present('a.example.com', 'Ok_token-2', 'keyauth');
  assert.deepEqual(readdirSync(join(webroot, '.well-known', 'acme-challenge')), ['Ok_token-2']);
  await solver.cleanupAll();
  assert.deepEqual(readdirSync(join(webroot, '.well-known', 'acme-challenge')), []);
});
