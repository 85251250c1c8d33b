/**
 * Issue 22's issuance row: the order's key made ahead (src/acme/key-ahead.ts) and the challenge tokens written
 * without fsync but never seen half-written (src/acme/http01.ts writeToken).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeysAhead } from '../../src/acme/key-ahead.js';
import { WebrootSolver, writeToken, CHALLENGE_PATH } from '../../src/acme/http01.js';
import type { KeyType } from '../../src/certs/keys.js';

function counting(fail = false) {
  const made: KeyType[] = [];
  const generate = async (t: KeyType) => {
    made.push(t);
    if (fail) throw new Error('no entropy');
    return `KEY ${made.length} ${t}`;
  };
  return { made, generate };
}

test('a key made ahead is handed to its own order once, and only for the key type it was made for', async () => {
  const g = counting();
  const ahead = new KeysAhead(4, g.generate);
  ahead.start('a.example.com', 'rsa-2048');
  ahead.start('a.example.com', 'rsa-2048'); // a second start for the same certificate makes no second key
  ahead.start('b.example.com', 'ecdsa-p256');
  assert.deepEqual(g.made, ['rsa-2048', 'ecdsa-p256']);
  assert.equal(await ahead.take('a.example.com', 'rsa-2048'), 'KEY 1 rsa-2048');
  assert.equal(ahead.take('a.example.com', 'rsa-2048'), undefined, 'handed out once');
  assert.equal(ahead.take('c.example.com', 'rsa-2048'), undefined, 'none was made for c');
  assert.equal(ahead.take('b.example.com', 'rsa-2048'), undefined, 'a P-256 key is no RSA key: the order makes its own');
  assert.equal(ahead.take('b.example.com', 'ecdsa-p256'), undefined, 'and it is dropped');
});

test('no more keys are made ahead in a pass than orders start at once; a failed one rejects only when taken', async () => {
  const g = counting(true);
  const ahead = new KeysAhead(2, g.generate);
  for (const n of ['a', 'b', 'c', 'd']) ahead.start(`${n}.example.com`, 'rsa-2048');
  assert.equal(g.made.length, 2, 'two keys at most (the limit)');
  // Taking frees no share of the pass: the limit counts keys made, so a first pass over many names spends its
  // CPU on its placeholders, not on keys.
  await assert.rejects(ahead.take('a.example.com', 'rsa-2048')!, /no entropy/);
  ahead.start('e.example.com', 'rsa-2048');
  assert.equal(g.made.length, 2);
  assert.equal(ahead.take('c.example.com', 'rsa-2048'), undefined);
  ahead.clear();
  assert.equal(ahead.take('b.example.com', 'rsa-2048'), undefined, 'clear forgets the rest');
  // The key of b failed too and was never taken: no unhandled rejection fails this test file.
  await new Promise((r) => setTimeout(r, 10));
});

test('a challenge token is never read half-written while it is replaced, and no temp file is left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-token-'));
  const file = join(dir, 'tok');
  // Large enough that a plain write would be seen part-way by a reader reading at the same time.
  const versions = ['a', 'b', 'c'].map((c) => c.repeat(512 * 1024));
  await writeToken(file, versions[0]!, 0o644);
  let writing = true;
  const writer = (async () => {
    for (let i = 0; i < 60; i++) await writeToken(file, versions[i % 3]!, 0o644);
    writing = false;
  })();
  let reads = 0;
  while (writing) {
    const text = await readFile(file, 'utf8');
    assert.ok(versions.includes(text), `read ${text.length} bytes that are no whole version`);
    reads++;
  }
  await writer;
  assert.ok(reads > 0);
  assert.deepEqual(readdirSync(dir), ['tok'], 'only the token: every temp file was renamed into place');
});

test('a token is world-readable (0644) whatever the umask; ten presents at once (one folder preparation) all land, and a later one prepares the folder again', async () => {
  const webroot = mkdtempSync(join(tmpdir(), 'cw-token-'));
  const solver = new WebrootSolver(webroot);
  const old = process.umask(0o077);
  try {
    await Promise.all(Array.from({ length: 10 }, (_, i) => solver.present(`n${i}.example.com`, `token-${i}`, `token-${i}.thumbprint`)));
  } finally {
    process.umask(old);
  }
  const challengeDir = join(webroot, CHALLENGE_PATH);
  assert.deepEqual(readdirSync(challengeDir).sort(), Array.from({ length: 10 }, (_, i) => `token-${i}`).sort());
  for (let i = 0; i < 10; i++) {
    const f = join(challengeDir, `token-${i}`);
    assert.equal(readFileSync(f, 'utf8'), `token-${i}.thumbprint`);
    assert.equal(statSync(f).mode & 0o777, 0o644);
  }
  assert.equal(statSync(challengeDir).mode & 0o755, 0o755, 'the challenge folder is readable by the webroot');
  await solver.cleanupAll();
  assert.deepEqual(readdirSync(challengeDir), []);
  // After the shared preparation settled, a later present prepares again (a folder removed meanwhile comes back).
  await import('node:fs/promises').then((fs) => fs.rm(join(webroot, '.well-known'), { recursive: true }));
  await solver.present('late.example.com', 'late', 'late.thumbprint');
  assert.equal(readFileSync(join(challengeDir, 'late'), 'utf8'), 'late.thumbprint');
});
