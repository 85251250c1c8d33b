/**
 * Issue 23 (mutation run of src/webroot/server.ts): what the challenge port answers that the other webroot
 * tests leave unchecked: a symlink or a folder at a token's name is never followed, a challenge "folder" that
 * is a file is a plain 404, /healthz by its fast path, a token changed on disk is served changed once its copy
 * in memory is a second old, and the server listens on every address when none is given.
 */
import { test, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { rawRequest } from '../support/http.js';
import { openFilesUnder } from '../support/open-files.js';

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

// Each test below asks for tokens no other test names: a token's first answer comes from serve-static, every later
// one from memory.
const url = (token: string) => `/.well-known/acme-challenge/${token}`;
const settle = () => new Promise((r) => setTimeout(r, 50)); // the background read that fills memory

test('webroot: a token asked for again within a second is answered from memory, without the disk: removed just before, it is still served', async () => {
  // What memory buys is that a busy token costs no file system call; a removed token is public and harmless.
  const tokens = ['mem_Token-a', 'mem_Token-b'];
  for (const t of tokens) writeFileSync(join(challenges, t), `${t}.keyauth`);
  for (const t of tokens) assert.equal((await get(url(t))).status, 200);
  await settle();
  for (const t of tokens) rmSync(join(challenges, t));
  for (let i = 0; i < 2; i++) {
    for (const t of tokens) {
      const r = await get(url(t));
      assert.equal(r.status, 200, `${t} #${i}: both tokens are kept, and neither is looked up on disk again within the second`);
      assert.equal(r.body.toString(), `${t}.keyauth`);
      assert.equal(Number(r.headers['content-length']), `${t}.keyauth`.length);
    }
    await settle();
  }
});

test('webroot: a token removed once its copy in memory is more than a second old is soon 404: the next request reads the disk again', async () => {
  const token = 'old_Token-1';
  writeFileSync(join(challenges, token), 'old');
  assert.equal((await get(url(token))).status, 200);
  await settle();
  await new Promise((r) => setTimeout(r, 1100));
  rmSync(join(challenges, token));
  // The first request after the second starts the re-read (and may still be answered from memory); the read's
  // failure then drops the token. On a loaded machine that read can take a while: allow 3 s.
  const statuses: number[] = [];
  const deadline = Date.now() + 3000;
  while (statuses.at(-1) !== 404 && Date.now() < deadline) {
    statuses.push((await get(url(token))).status);
    await settle();
  }
  assert.equal(statuses.at(-1), 404, `answers after removal: ${statuses.join(', ')}`);
  assert.equal((await get(url(token))).status, 404, 'and stays 404');
});

test('webroot: a token\'s first answer (from the file) carries no ETag or Last-Modified, nor does /healthz: nothing to make a fetch conditional on; and no X-Powered-By', async () => {
  const token = 'first_Token-1';
  writeFileSync(join(challenges, token), 'first');
  for (const r of [await get(url(token)), await get('/healthz')]) {
    assert.equal(r.status, 200);
    assert.equal(r.headers.etag, undefined);
    assert.equal(r.headers['last-modified'], undefined);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['x-powered-by'], undefined);
  }
});

test('webroot: a range or condition on a token\'s first request is ignored: the CA always gets the whole token, 200', async () => {
  const headers: Record<string, string> = {
    range: 'bytes=0-1',
    'if-range': 'Wed, 21 Oct 2015 07:28:00 GMT',
    'if-match': '"other"',
    'if-none-match': '*',
    'if-modified-since': new Date(Date.now() + 86_400_000).toUTCString(),
    'if-unmodified-since': 'Wed, 21 Oct 2015 07:28:00 GMT',
  };
  for (const [name, value] of Object.entries(headers)) {
    const token = `cond_${name}`;
    writeFileSync(join(challenges, token), 'whole.keyauth');
    const r = await rawRequest(port, url(token), { headers: { [name]: value, ...(name === 'if-range' ? { range: 'bytes=0-1' } : {}) } });
    assert.equal(r.status, 200, `${name}: ${value}`);
    assert.equal(r.body.toString(), 'whole.keyauth', name);
  }
});

test('webroot: a token read into memory leaves no file open', async () => {
  for (let i = 0; i < 3; i++) {
    const token = `fd_Token-${i}`;
    writeFileSync(join(challenges, token), 'fd');
    assert.equal((await get(url(token))).status, 200);
    await settle();
    assert.equal((await get(url(token))).status, 200, 'served from memory');
  }
  await settle();
  assert.deepEqual(openFilesUnder(challenges), [], 'token files left open');
});

test('webroot: a challenge folder that cannot be looked in (a symlink loop) is a plain 500, told to onError, with no path or stack', async () => {
  const other = mkdtempSync(join(tmpdir(), 'cw-webroot-m-'));
  mkdirSync(join(other, '.well-known'));
  symlinkSync(join(other, '.well-known', 'acme-challenge'), join(other, '.well-known', 'acme-challenge'));
  const told: Error[] = [];
  for (const opts of [{ onError: (e: Error) => void told.push(e) }, {}]) {
    const s = await listenWebroot(createWebroot(other, opts), 0, '127.0.0.1');
    try {
      for (const method of ['GET', 'GET']) {
        const r = await rawRequest((s.address() as { port: number }).port, url('loop_Token'), { method });
        assert.equal(r.status, 500);
        assert.equal(r.body.toString(), 'internal server error\n');
        assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(r.headers['cache-control'], 'no-store');
      }
    } finally {
      s.close();
    }
  }
  assert.equal(told.length, 2);
  assert.match(told[0]!.message, /ELOOP/);
});

test('listenWebroot: listens on the address given; a port in use is refused with EADDRINUSE', async () => {
  const s = await listenWebroot(createWebroot(root), 0, '127.0.0.1');
  try {
    const { address, port: taken } = s.address() as { address: string; port: number };
    assert.equal(address, '127.0.0.1');
    await assert.rejects(listenWebroot(createWebroot(root), taken, '127.0.0.1'), /EADDRINUSE/);
  } finally {
    s.close();
  }
});

test('webroot: a token too long for a file name under a deep WEBROOT_DIR (the path past PATH_MAX) is a missing token, 404, not an error', async () => {
  // 17 folders of 230 characters: about 3,930 characters of webroot, so the challenge folder plus a 255-character
  // token passes Linux's 4,096, and lstat answers ENAMETOOLONG.
  let deep = mkdtempSync(join(tmpdir(), 'cw-webroot-m-'));
  for (let i = 0; i < 17; i++) deep = join(deep, `${i}`.padEnd(230, 'd'));
  mkdirSync(join(deep, '.well-known', 'acme-challenge'), { recursive: true });
  const told: Error[] = [];
  const s = await listenWebroot(createWebroot(deep, { onError: (e) => void told.push(e) }), 0, '127.0.0.1');
  try {
    const r = await rawRequest((s.address() as { port: number }).port, url('t'.repeat(255)));
    assert.equal(r.status, 404);
    assert.equal(r.body.toString(), 'not found\n');
    assert.deepEqual(told, []);
  } finally {
    s.close();
  }
});

test('webroot: memory holds at most memoryLimit tokens: a new one past it starts memory again empty; a token re-read from disk does not', async () => {
  // A copy in memory is answered 200 whatever its age (an old one is re-read behind the answer), so these checks do
  // not depend on timing, only on each background read having finished: `filled` gives it a generous while.
  const filled = () => new Promise((r) => setTimeout(r, 300));
  const server = async () => {
    const other = mkdtempSync(join(tmpdir(), 'cw-webroot-m-'));
    const dir = join(other, '.well-known', 'acme-challenge');
    mkdirSync(dir, { recursive: true });
    const s = await listenWebroot(createWebroot(other, { memoryLimit: 2 }), 0, '127.0.0.1');
    const at = (token: string) => rawRequest((s.address() as { port: number }).port, url(token));
    const serveOnce = async (token: string) => {
      writeFileSync(join(dir, token), token);
      assert.equal((await at(token)).status, 200, token);
      await filled();
    };
    return { s, at, serveOnce, gone: (token: string) => rmSync(join(dir, token)) };
  };
  // A third token past a full memory empties it: the first two are then read from disk, where they are gone.
  const a = await server();
  try {
    await a.serveOnce('one_Token');
    await a.serveOnce('two_Token');
    a.gone('one_Token');
    a.gone('two_Token');
    await a.serveOnce('three_Token');
    a.gone('three_Token');
    assert.equal((await a.at('three_Token')).status, 200, 'the new token is in memory');
    assert.equal((await a.at('one_Token')).status, 404, 'memory was emptied');
    assert.equal((await a.at('two_Token')).status, 404, 'memory was emptied');
  } finally {
    a.s.close();
  }
  // A token already in memory, re-read once its copy is a second old, does not empty a full memory.
  const b = await server();
  try {
    await b.serveOnce('one_Token');
    await new Promise((r) => setTimeout(r, 1100));
    await b.serveOnce('two_Token');
    assert.equal((await b.at('one_Token')).status, 200);
    await filled();
    b.gone('two_Token');
    assert.equal((await b.at('two_Token')).status, 200, 'kept through the re-read of another token');
  } finally {
    b.s.close();
  }
});

test('webroot: a path that is not a token is 404 even when a token named "undefined" is on disk', async () => {
  writeFileSync(join(challenges, 'undefined'), 'not for strangers');
  for (const path of ['/', '/x', '/.well-known/acme-challenge/', '/.well-known/acme-challenge/a.b', '/undefined']) {
    const r = await get(path);
    assert.equal(r.status, 404, path);
    assert.equal(r.body.toString(), 'not found\n', path);
  }
  assert.equal((await get(url('undefined'))).status, 200, 'asked for by its name, it is a token like any other');
});

test('webroot: a token replaced by a folder stops being served once its copy in memory is a second old', async () => {
  const token = 'foldered_Token';
  writeFileSync(join(challenges, token), 'was a file');
  assert.equal((await get(url(token))).status, 200);
  await settle();
  rmSync(join(challenges, token));
  mkdirSync(join(challenges, token));
  assert.equal((await get(url(token))).status, 200, 'from memory, less than a second old');
  await new Promise((r) => setTimeout(r, 1100));
  await get(url(token)); // the copy is old: answered once more while the file is read again
  await settle();
  assert.equal((await get(url(token))).status, 404);
});

/**
 * What serve-static meets after the handler's own look: the file gone or unreadable by then (a race, or a
 * webroot user that may not read it, which root here cannot be made), or a read that fails half-way. Its
 * fs calls are replaced for the token's path only (send calls them through the shared `fs` object).
 */
async function withServeStaticFs(token: string, fake: { stat?: NodeJS.ErrnoException | fs.Stats; stream?: () => Readable }, run: (told: Error[]) => Promise<void>): Promise<void> {
  const target = join(challenges, token);
  writeFileSync(target, 'token bytes of some length');
  const told: Error[] = [];
  const realStat = fs.stat;
  const realStream = fs.createReadStream;
  const stat = mock.method(fs, 'stat', (path: string, ...rest: unknown[]) => {
    const cb = rest.at(-1) as (e: Error | null) => void;
    if (path === target && fake.stat) return void (fake.stat instanceof Error ? process.nextTick(cb, fake.stat) : process.nextTick(cb, null, fake.stat));
    return (realStat as (...a: unknown[]) => void)(path, ...rest);
  });
  const stream = mock.method(fs, 'createReadStream', (path: string, ...rest: unknown[]) => (path === target && fake.stream ? fake.stream() : (realStream as (...a: unknown[]) => Readable)(path, ...rest)));
  try {
    await run(told);
  } finally {
    stat.mock.restore();
    stream.mock.restore();
  }
}
const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: on ${challenges}/...`), { code });

test('webroot: a token serve-static cannot stat (EACCES) is a plain 500, told to onError, with no path; without onError too', async () => {
  for (const withHook of [true, false]) {
    await withServeStaticFs(`eacces_Token${withHook ? 1 : 2}`, { stat: errno('EACCES') }, async (told) => {
      const s = await listenWebroot(createWebroot(root, withHook ? { onError: (e) => void told.push(e) } : {}), 0, '127.0.0.1');
      try {
        const r = await rawRequest((s.address() as { port: number }).port, url(`eacces_Token${withHook ? 1 : 2}`));
        assert.equal(r.status, 500);
        assert.equal(r.body.toString(), 'internal server error\n');
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.equal(told.length, withHook ? 1 : 0);
        if (withHook) assert.match(told[0]!.message, /EACCES/);
      } finally {
        s.close();
      }
    });
  }
});

test('webroot: a token gone before serve-static looks (its stat) or before it opens the file is a 404, not an error', async () => {
  const cases: [string, Parameters<typeof withServeStaticFs>[1]][] = [
    ['gone1_Token', { stat: errno('ENOENT') }],
    ['gone2_Token', { stream: () => new Readable({ read() { this.destroy(errno('ENOENT')); } }) }],
  ];
  for (const [token, fake] of cases) {
    await withServeStaticFs(token, fake, async (told) => {
      const s = await listenWebroot(createWebroot(root, { onError: (e) => void told.push(e) }), 0, '127.0.0.1');
      try {
        const r = await rawRequest((s.address() as { port: number }).port, url(token));
        assert.equal(r.status, 404, token);
        assert.equal(r.body.toString(), 'not found\n', token);
        assert.deepEqual(told, [], token);
      } finally {
        s.close();
      }
    });
  }
});

test('webroot: a token whose read fails half-way is cut off (the client sees a short body), told to onError', async () => {
  await withServeStaticFs('halfway_Token', {
    stream: () => {
      let sent = false;
      return new Readable({
        read() {
          if (!sent) {
            sent = true;
            this.push('token ');
          } else setTimeout(() => this.destroy(errno('EIO')), 20);
        },
      });
    },
  }, async (told) => {
    const s = await listenWebroot(createWebroot(root, { onError: (e) => void told.push(e) }), 0, '127.0.0.1');
    // Express prints an error's stack when its own last handler gets one (as it would for a status line
    // written after the headers went); the error is told to onError once, and nothing is printed.
    const printed = mock.method(console, 'error', () => undefined);
    try {
      const r = await rawRequest((s.address() as { port: number }).port, url('halfway_Token')).catch((e: Error) => e);
      await settle();
      assert.equal(printed.mock.callCount(), 0, 'nothing printed to stderr');
      if (!(r instanceof Error)) {
        assert.equal(r.status, 200);
        assert.ok(r.body.length < Number(r.headers['content-length']), `${r.body.length} bytes of ${r.headers['content-length']}`);
      }
      assert.equal(told.length, 1);
      assert.match(told[0]!.message, /EIO/);
    } finally {
      printed.mock.restore();
      s.close();
    }
  });
});

test('webroot: a token that is a folder by the time serve-static looks (a race) is a plain 404, not a redirect', async () => {
  const folder = fs.statSync(challenges);
  await withServeStaticFs('raced_Token', { stat: folder }, async (told) => {
    const s = await listenWebroot(createWebroot(root, { onError: (e) => void told.push(e) }), 0, '127.0.0.1');
    try {
      const r = await rawRequest((s.address() as { port: number }).port, url('raced_Token'));
      assert.equal(r.status, 404);
      assert.equal(r.headers.location, undefined);
      assert.equal(r.body.toString(), 'not found\n');
      assert.deepEqual(told, []);
    } finally {
      s.close();
    }
  });
});
