/**
 * Issue 4, security: a bounded fuzz of the webroot. Thousands of generated request lines (paths built from
 * traversal pieces, encodings, dotfiles, real and near-miss tokens), methods and headers; the only 200s
 * must be the real tokens, answered with their exact bytes. Seeded, so a failure reproduces.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { rawRequest } from '../support/http.js';

const root = mkdtempSync(join(tmpdir(), 'cw-fuzz-'));
const dir = join(root, '.well-known', 'acme-challenge');
const TOKENS = ['Ab_c-123', 'zzzTOKENzzz', 'x'.repeat(43)];
let server: Server;
let port: number;

before(async () => {
  mkdirSync(dir, { recursive: true });
  for (const t of TOKENS) writeFileSync(join(dir, t), `${t}.thumbprint`);
  writeFileSync(join(dir, '.env'), 'SECRET=1');
  // Real files beside the tokens whose names are near-tokens: only the token pattern keeps them out.
  writeFileSync(join(dir, 'backup.key'), '-----BEGIN PRIVATE KEY----- backup');
  writeFileSync(join(dir, `${TOKENS[0]}.txt`), '-----BEGIN PRIVATE KEY----- txt');
  writeFileSync(join(root, 'privkey.pem'), '-----BEGIN PRIVATE KEY-----');
  writeFileSync(join(root, '.well-known', 'security.txt'), 'contact');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'inner'), 'inner');
  symlinkSync(join(root, 'privkey.pem'), join(dir, 'link'));
  server = await listenWebroot(createWebroot(root), 0, '127.0.0.1');
  port = (server.address() as { port: number }).port;
});
after(() => server.close());

/** mulberry32: small, seeded, good enough to pick pieces. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PREFIXES = ['/.well-known/acme-challenge/', '/.well-known/acme-challenge', '/.well-known/', '/', '//.well-known/acme-challenge/', '/.well-known//acme-challenge/', '/.WELL-KNOWN/acme-challenge/', '/.well-known/acme-challenge/./', '/.well-known/acme-challenge/sub/../', '/.well-known/%61cme-challenge/', '/%2e%77ell-known/acme-challenge/', '\\.well-known\\acme-challenge\\'];
const PIECES = ['..', '../', '..%2f', '%2e%2e/', '%2e%2e%2f', '..\\', '..%5c', '%252e%252e%252f', '.env', 'sub/inner', 'sub', 'link', 'privkey.pem', '%00', '%', '%zz', ';', '?x=1', '#frag', '~', '*', 'security.txt', 'backup.key', '.txt', '.', '%2F', ' ', '\t', 'é', '%c0%ae%c0%ae/', ...TOKENS.map((t) => t.slice(0, -1)), ...TOKENS.map((t) => `${t}x`), ...TOKENS.map((t) => t.toLowerCase()), ...TOKENS.map((t) => t.toUpperCase()), ...TOKENS];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'CONNECT', 'PROPFIND', 'get'];
const HEADERS: Record<string, string>[] = [{}, { Range: 'bytes=0-3' }, { 'If-None-Match': '*' }, { 'If-Modified-Since': 'Thu, 01 Jan 2099 00:00:00 GMT' }, { 'X-Forwarded-Host': 'evil.example' }, { 'Accept-Encoding': 'gzip, br' }, { 'Content-Length': '5' }, { Host: '' }];

test('webroot fuzz: of 3,000 generated requests, the only 200s are real tokens with their exact bytes', async () => {
  const rand = rng(20261123);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const oks: string[] = [];
  const redirects: string[] = [];
  const N = 3000;
  const cases = Array.from({ length: N }, () => {
    // One request in ten asks for a real token (with odd methods and headers too), so that the 200 path is fuzzed as well.
    if (rand() < 0.1) return { path: `/.well-known/acme-challenge/${pick(TOKENS)}${pick(['', '', '?x=1', '?'])}`, method: pick(METHODS), headers: pick(HEADERS) };
    const pieces = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(PIECES));
    return { path: pick(PREFIXES) + pieces.join(''), method: pick(METHODS), headers: pick(HEADERS) };
  });
  // A few at a time: enough to be quick, few enough not to measure the machine.
  for (let i = 0; i < cases.length; i += 16) {
    await Promise.all(
      cases.slice(i, i + 16).map(async (c) => {
        const r = await rawRequest(port, c.path, { method: c.method, headers: c.headers }).catch(() => ({ status: 0, body: Buffer.alloc(0), headers: {} }));
        if (r.status >= 300 && r.status < 400) redirects.push(`${r.status} ${c.method} ${c.path}`);
        const body = r.body.toString('latin1');
        assert.ok(!body.includes('PRIVATE KEY') && !body.includes('SECRET=') && !body.includes('inner') && !body.includes('contact'), `${c.method} ${c.path} leaked a file: ${body.slice(0, 60)}`);
        if (r.status >= 200 && r.status < 300) {
          const token = TOKENS.find((t) => c.path === `/.well-known/acme-challenge/${t}` || c.path.startsWith(`/.well-known/acme-challenge/${t}?`) || c.path.startsWith(`/.well-known/acme-challenge/${t}#`));
          assert.ok(token, `${c.method} ${JSON.stringify(c.path)} answered ${r.status}`);
          assert.ok(['GET', 'HEAD'].includes(c.method), `${c.method} ${c.path} answered ${r.status}`);
          if (c.method === 'GET') assert.equal(body, `${token}.thumbprint`, `${c.path}: exact bytes, whatever the Range or conditional headers`);
          oks.push(c.path);
        }
        assert.ok(r.status < 300 || [400, 404, 405, 0].includes(r.status) || r.status === 501, `${c.method} ${c.path}: unexpected ${r.status}`);
      }),
    );
  }
  // Every plain GET or HEAD of a real token was answered 200, not only "the 200s were tokens": a server
  // that answers nothing at all must fail here.
  const plain = cases.filter((c) => ['GET', 'HEAD'].includes(c.method) && !('Content-Length' in c.headers) && !('Host' in c.headers) && TOKENS.some((t) => c.path.split('?')[0] === `/.well-known/acme-challenge/${t}`));
  assert.ok(plain.length > 40, `real tokens were asked for (${plain.length})`);
  for (const c of plain) assert.ok(oks.includes(c.path), `${c.method} ${c.path} with ${JSON.stringify(c.headers)} was not answered 200`);
  assert.deepEqual(redirects, [], 'no redirects');
});

test('webroot: a token replaced by a symlink stops being served, even from memory', async () => {
  const token = 'swap_ME-1';
  const path = join(dir, token);
  writeFileSync(path, 'answer');
  const url = `/.well-known/acme-challenge/${token}`;
  assert.equal((await rawRequest(port, url)).status, 200);
  assert.equal((await rawRequest(port, url)).body.toString(), 'answer', 'now answered from memory');
  unlinkSync(path);
  symlinkSync(join(root, 'privkey.pem'), path);
  // The memory entry is re-read (without following links) once it is a second old; within a few requests it is gone.
  const deadline = Date.now() + 5000;
  let last = await rawRequest(port, url);
  while (last.status === 200 && Date.now() < deadline) {
    assert.equal(last.body.toString(), 'answer', 'never the link target');
    await new Promise((r) => setTimeout(r, 200));
    last = await rawRequest(port, url);
  }
  assert.equal(last.status, 404);
  assert.ok(!last.body.toString().includes('PRIVATE KEY'));
});
