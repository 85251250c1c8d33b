/**
 * Issue 23: the crash-safe writes' other half: folders made past the umask, a failed write that leaves
 * nothing behind, and the recovery of an interrupted set, which finishes a committed one, discards an
 * uncommitted one, and touches no file it did not name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertFilesExist, ensureDir, recoverFileSet, writeFileAtomic, writeFileSet, writeSynced } from '../../src/certs/atomic.js';
import { openFilesUnder } from '../support/open-files.js';

const mode = (p: string) => statSync(p).mode & 0o777;
const tmp = () => mkdtempSync(join(tmpdir(), 'cw-atomic-'));

async function underUmask<T>(mask: number, f: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await f();
  } finally {
    process.umask(old);
  }
}

test('atomic: ensureDir gives the folders it creates, parents included, exactly the mode asked for; an existing folder keeps its own', async () => {
  const base = tmp();
  chmodSync(base, 0o750);
  await underUmask(0o077, () => ensureDir(join(base, 'a', 'b', 'c'), 0o755));
  for (const d of ['a', 'a/b', 'a/b/c']) assert.equal(mode(join(base, d)), 0o755, d);
  assert.equal(mode(base), 0o750, 'not created here: not changed');
  await underUmask(0, () => ensureDir(join(base, 'a', 'b', 'd'), 0o700));
  assert.equal(mode(join(base, 'a', 'b', 'd')), 0o700);
  assert.equal(mode(join(base, 'a', 'b')), 0o755, 'an existing parent is not changed');
  await ensureDir(join(base, 'a'), 0o700);
  assert.equal(mode(join(base, 'a')), 0o755, 'nothing created, nothing changed');
});

test('atomic: a file gets exactly its mode whatever the umask; a write that fails leaves no temporary file and the old file', async () => {
  const dir = tmp();
  await underUmask(0o077, () => writeFileAtomic(join(dir, 'pub.pem'), 'PUBLIC', 0o644));
  assert.equal(mode(join(dir, 'pub.pem')), 0o644);
  await underUmask(0, () => writeSynced(join(dir, 'key.pem'), 'KEY', 0o600));
  assert.equal(mode(join(dir, 'key.pem')), 0o600);
  await assert.rejects(writeSynced(join(dir, 'key.pem'), 'AGAIN', 0o600), /EEXIST/, 'never over an existing file');
  // The target is a folder with something in it: the rename fails.
  mkdirSync(join(dir, 'busy'));
  writeFileSync(join(dir, 'busy', 'x'), '');
  await assert.rejects(writeFileAtomic(join(dir, 'busy'), 'data', 0o600), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.deepEqual(readdirSync(dir).sort(), ['busy', 'key.pem', 'pub.pem'], 'no temporary file left');
});

test('atomic: a set that fails before its commit removes its new files and keeps the old set', async () => {
  const dir = tmp();
  await writeFileSet(dir, [{ name: 'a.pem', data: 'OLD-A', mode: 0o600 }, { name: 'b.pem', data: 'OLD-B', mode: 0o644 }], 0o700);
  mkdirSync(join(dir, 'b.pem.new')); // b.pem.new cannot be created as a file
  await assert.rejects(writeFileSet(dir, [{ name: 'a.pem', data: 'NEW-A', mode: 0o600 }, { name: 'b.pem', data: 'NEW-B', mode: 0o644 }], 0o700), /EEXIST|EISDIR/);
  assert.equal(readFileSync(join(dir, 'a.pem'), 'utf8'), 'OLD-A');
  assert.equal(readFileSync(join(dir, 'b.pem'), 'utf8'), 'OLD-B');
  assert.ok(!readdirSync(dir).includes('a.pem.new'), 'the new file that was written is removed');
  assert.ok(!readdirSync(dir).includes('.commit'));
});

test('atomic: recovery discards an uncommitted set and our temporary files, and nothing else', async () => {
  const dir = tmp();
  await writeFileSet(dir, [{ name: 'cert.pem', data: 'OLD', mode: 0o644 }], 0o700);
  const ours = ['cert.pem.new', '.cert.pem.tmp-0123456789ab', '..commit.tmp-abcdef012345'];
  const theirs = ['notes.txt', '.cert.pem.tmp-123', '.cert.pem.tmp-0123456789AB', 'cert.pem.new.bak', 'x.tmp-0123456789ab', '.tmp-0123456789ab', 'a.b.tmp-0123456789ab', '.a.tmp-0123456789ab.bak'];
  for (const f of [...ours, ...theirs]) writeFileSync(join(dir, f), 'x');
  await recoverFileSet(dir);
  assert.deepEqual(readdirSync(dir).sort(), ['cert.pem', ...theirs].sort());
  assert.equal(readFileSync(join(dir, 'cert.pem'), 'utf8'), 'OLD');
});

test('atomic: recovery finishes a committed set (some files already moved), and discards one whose marker is torn', async () => {
  const dir = tmp();
  await writeFileSet(dir, [{ name: 'k.pem', data: 'OLD-K', mode: 0o600 }, { name: 'c.pem', data: 'OLD-C', mode: 0o644 }], 0o700);
  writeFileSync(join(dir, 'k.pem'), 'NEW-K'); // moved before the crash
  writeFileSync(join(dir, 'c.pem.new'), 'NEW-C');
  writeFileSync(join(dir, '.commit'), JSON.stringify(['k.pem', 'c.pem']));
  await recoverFileSet(dir);
  assert.deepEqual([readFileSync(join(dir, 'k.pem'), 'utf8'), readFileSync(join(dir, 'c.pem'), 'utf8')], ['NEW-K', 'NEW-C']);
  assert.deepEqual(readdirSync(dir).sort(), ['c.pem', 'k.pem']);

  writeFileSync(join(dir, 'k.pem.new'), 'TORN-K');
  writeFileSync(join(dir, '.commit'), '["k.pem", "c.p');
  await recoverFileSet(dir);
  assert.deepEqual([readFileSync(join(dir, 'k.pem'), 'utf8'), readFileSync(join(dir, 'c.pem'), 'utf8')], ['NEW-K', 'NEW-C'], 'a torn marker is no commit');
  assert.deepEqual(readdirSync(dir).sort(), ['c.pem', 'k.pem']);
});

test('atomic: recovery of a folder that does not exist does nothing; of a path that is a file, fails', async () => {
  const dir = tmp();
  await recoverFileSet(join(dir, 'none'));
  assert.deepEqual(readdirSync(dir), []);
  writeFileSync(join(dir, 'file'), '');
  await assert.rejects(recoverFileSet(join(dir, 'file')), /ENOTDIR/);
});

test('atomic: a commit that names a file no longer there fails naming it', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'a.new'), '');
  await assertFilesExist(dir, ['a.new']);
  await assert.rejects(assertFilesExist(dir, ['a.new', 'b.new']), (e: Error) => e.message === `${join(dir, 'b.new')} is missing after it was written (ENOENT): the set is not committed`);
});

test('atomic: writes close every file they open (a daemon writing for months must not run out of descriptors)', async () => {
  const dir = tmp();
  for (let i = 0; i < 20; i++) await writeFileAtomic(join(dir, `f${i}`), 'x', 0o600);
  for (let i = 0; i < 5; i++) await writeFileSet(join(dir, 'set'), [{ name: 'a', data: `${i}`, mode: 0o600 }, { name: 'b', data: `${i}`, mode: 0o600 }], 0o700);
  assert.deepEqual(openFilesUnder(dir), [], 'descriptors left open');
});
