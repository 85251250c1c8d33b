/**
 * Issue 20: STORE is read through its registry, and every book is a JsonBook over the store: absent is empty,
 * a bad book is an error naming where it is and what to do, changes made together are all kept, and a write
 * that changes nothing is not made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { FilesStore } from '../../src/stores/files/files-store.js';
import { JsonBook } from '../../src/stores/json-book.js';
import { STORES } from '../../src/stores/registry.js';

test('STORE: files by default, with DATA_DIR as its option; another name is refused, listing the stores', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-store-env-'));
  const c = loadConfig({ DATA_DIR: dir });
  assert.equal(c.store, 'files');
  assert.deepEqual(c.storeOptions, { dataDir: dir });
  assert.ok(STORES.includes('files'));
  assert.throws(() => loadConfig({ STORE: 'floppy' }), (e: Error) => /STORE="floppy" is not valid; accepted: .*files/.test(e.message));
});

interface Tally {
  version: 1;
  seen: string[];
}

const tallyBook = (store: FilesStore) =>
  new JsonBook<Tally>(store, {
    path: 'tally.json',
    empty: () => ({ version: 1, seen: [] }),
    validate: (p) => {
      const t = p as Tally;
      if (t?.version !== 1 || !Array.isArray(t.seen)) throw new Error('not a version 1 tally');
      return t;
    },
    indent: 2,
  });

test('JsonBook: absent is empty; changes made together are all kept; a change that changes nothing writes nothing; a bad book names its file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-json-book-'));
  const store = new FilesStore(dir);
  const book = tallyBook(store);
  assert.deepEqual(await book.load(), { version: 1, seen: [] });
  await Promise.all(['a', 'b', 'c'].map((x) => book.change((t) => ({ ...t, seen: [...t.seen, x] }))));
  assert.deepEqual((await tallyBook(store).load()).seen.sort(), ['a', 'b', 'c'], 'no change lost another');
  const file = join(dir, 'tally.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const ino = statSync(file).ino;
  await book.change((t) => t);
  await book.save(await book.load());
  assert.equal(statSync(file).ino, ino, 'the same text is not written again');

  writeFileSync(file, '{"version": 2}');
  await assert.rejects(tallyBook(store).load(), (e: Error) => e.message === `${file} is not valid (not a version 1 tally); fix it or move it aside`);
  writeFileSync(file, '{"version"');
  await assert.rejects(tallyBook(store).change((t) => t), (e: Error) => e.message.startsWith(`${file} is not valid (`));
  const lenient = new JsonBook<Tally>(store, { path: 'tally.json', empty: () => ({ version: 1, seen: [] }), validate: (p) => p as Tally, lenient: true });
  assert.deepEqual(await lenient.load(), { version: 1, seen: [] }, 'a lenient book reads a bad one as empty');
});

test('JsonBook shared: the same value while the book is untouched, read again once it was written (by the book, or by hand); change() gets its own copy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-book-shared-'));
  const store = new FilesStore(dir);
  await store.init();
  let reads = 0;
  const read = store.read.bind(store);
  store.read = (path: string) => (reads++, read(path));
  const book = new JsonBook<Tally>(store, { path: 'tally.json', empty: () => ({ version: 1, seen: [] }), validate: (p) => p as Tally, shared: true });
  assert.deepEqual(await book.load(), { version: 1, seen: [] }, 'absent: empty, and not held');
  assert.notEqual(await book.load(), await book.load());
  await book.save({ version: 1, seen: ['a'] });
  reads = 0;
  const first = await book.load();
  assert.deepEqual(first, { version: 1, seen: ['a'] });
  assert.equal(await book.load(), first, 'untouched: the same value');
  assert.equal(reads, 1, 'read once');
  writeFileSync(join(dir, 'tally.json'), '{"version":1,"seen":["by hand"]}\n');
  assert.deepEqual(await book.load(), { version: 1, seen: ['by hand'] }, 'changed by hand: read again');
  const mine = await book.change((t) => (t.seen.push('b'), t));
  assert.deepEqual(mine.seen, ['by hand', 'b']);
  const after = await book.load();
  assert.deepEqual(after.seen, ['by hand', 'b'], 'written by the book: read again');
  await book.change((t) => (t.seen.push('c'), undefined));
  assert.deepEqual((await book.load()).seen, ['by hand', 'b'], 'change() was given a copy: the held value is as stored');
  assert.deepEqual(after.seen, ['by hand', 'b']);
});
