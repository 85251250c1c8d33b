/**
 * Issue 23 (mutation run of src/certs/atomic.ts): two survivors of the first run. A write must close the file
 * it opened, at once (a daemon writing for months must not wait for the garbage collector to give descriptors
 * back), and a committed set whose file cannot be moved into place is a failed write, not a quiet success.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needsRecovery, recoverFileSet, writeFileAtomic, writeFileSet, writeSynced } from '../../src/certs/atomic.js';
import { openFilesUnder } from '../support/open-files.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'cw-atomic-m-'));
test('atomic: each synced write gives its descriptor back before it returns', async () => {
  const dir = tmp();
  for (let i = 0; i < 10; i++) {
    await writeSynced(join(dir, `f${i}`), 'x', 0o600);
    assert.deepEqual(openFilesUnder(dir), [], `write ${i} left a descriptor open`);
  }
});

test('atomic: a committed set whose file cannot be moved into place (a folder stands at its name) fails the write, naming why', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'cert.pem'));
  writeFileSync(join(dir, 'cert.pem', 'operator-file'), 'kept');
  await assert.rejects(
    writeFileSet(dir, [{ name: 'key.pem', data: 'KEY', mode: 0o600 }, { name: 'cert.pem', data: 'CERT', mode: 0o644 }], 0o700),
    (e: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code ?? '') && e.message.includes('cert.pem'),
  );
  assert.equal(readFileSync(join(dir, 'cert.pem', 'operator-file'), 'utf8'), 'kept', 'what stands there is not touched');
  assert.ok(existsSync(join(dir, 'cert.pem.new')), 'the new certificate waits beside it for the next recovery');
  // Its marker names the set, so a recovery once the folder is moved aside finishes it.
  renameSync(join(dir, 'cert.pem'), join(dir, 'moved-aside'));
  await recoverFileSet(dir);
  assert.deepEqual([readFileSync(join(dir, 'key.pem'), 'utf8'), readFileSync(join(dir, 'cert.pem'), 'utf8')], ['KEY', 'CERT']);
});

test('atomic: a marker whose text is not a list of names (an object, a string, numbers) was never completed: its set is discarded, the old one kept', async () => {
  for (const marker of ['{}', '{"0":"k.pem"}', '"k.pem"', '[1]', '["k.pem", 1]', 'null']) {
    const dir = tmp();
    await writeFileSet(dir, [{ name: 'k.pem', data: 'OLD-K', mode: 0o600 }], 0o700);
    writeFileSync(join(dir, 'k.pem.new'), 'NEW-K');
    writeFileSync(join(dir, '.commit'), marker);
    await recoverFileSet(dir);
    assert.equal(readFileSync(join(dir, 'k.pem'), 'utf8'), 'OLD-K', marker);
    assert.equal(existsSync(join(dir, 'k.pem.new')), false, marker);
    assert.equal(existsSync(join(dir, '.commit')), false, marker);
  }
});

test('writeFileAtomic: a temporary file that could not be made fails with its own reason (EACCES), not the clean-up\'s "no such file"', async () => {
  // /sys refuses new files even to root, with EACCES: the temporary file is never made, so there is nothing to remove.
  await assert.rejects(writeFileAtomic('/sys/certwrangler-test.pem', 'x', 0o600), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'EACCES', e.message);
    assert.equal(e.syscall, 'open');
    return true;
  });
});

test('needsRecovery: a folder with its commit marker alone (renames done, marker left), a .new file or a temp file needs recovery; a settled one does not', () => {
  assert.equal(needsRecovery(['cert.pem', 'privkey.pem', 'chain.pem', 'meta.json']), false);
  assert.equal(needsRecovery([]), false);
  assert.equal(needsRecovery(['cert.pem', '.commit']), true);
  assert.equal(needsRecovery(['cert.pem', 'cert.pem.new']), true);
  assert.equal(needsRecovery(['cert.pem', '.cert.pem.tmp-0123456789ab']), true);
  assert.equal(needsRecovery(['cert.pem', '.cert.pem.tmp-xyz', 'backup.commit']), false, 'names this module never makes');
});

test('atomic: a committed set whose roll-forward fails half-way is finished by a later recovery, never discarded (the new key is already in place)', async () => {
  const dir = tmp();
  await writeFileSet(dir, [{ name: 'key.pem', data: 'OLD-KEY', mode: 0o600 }, { name: 'cert.pem', data: 'OLD-CERT', mode: 0o644 }], 0o700);
  writeFileSync(join(dir, 'key.pem.new'), 'NEW-KEY');
  writeFileSync(join(dir, 'cert.pem.new'), 'NEW-CERT');
  writeFileSync(join(dir, '.commit'), JSON.stringify(['key.pem', 'cert.pem']));
  // Something stands where cert.pem goes: key.pem is moved in, then cert.pem's rename fails.
  renameSync(join(dir, 'cert.pem'), join(dir, 'old-cert.pem'));
  mkdirSync(join(dir, 'cert.pem'));
  writeFileSync(join(dir, 'cert.pem', 'operator-file'), 'kept');
  for (let i = 0; i < 2; i++) {
    await assert.rejects(recoverFileSet(dir), (e: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code ?? ''));
    assert.equal(readFileSync(join(dir, 'key.pem'), 'utf8'), 'NEW-KEY');
    assert.equal(readFileSync(join(dir, 'cert.pem.new'), 'utf8'), 'NEW-CERT', 'the new certificate is kept for the next try');
    assert.ok(existsSync(join(dir, '.commit')), 'the marker stays until the set is whole');
  }
  renameSync(join(dir, 'cert.pem'), join(dir, 'moved-aside'));
  await recoverFileSet(dir);
  assert.deepEqual([readFileSync(join(dir, 'key.pem'), 'utf8'), readFileSync(join(dir, 'cert.pem'), 'utf8')], ['NEW-KEY', 'NEW-CERT']);
  assert.equal(existsSync(join(dir, '.commit')), false);
  assert.equal(existsSync(join(dir, 'cert.pem.new')), false);
});
