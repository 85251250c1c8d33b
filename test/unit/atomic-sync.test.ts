/**
 * Issue 23: the fsyncs of the crash-safe writes, seen on the wire to the file system. Every file the write
 * opens has its own handle's sync() recorded (node:test's mock.method on fs.promises.open), and renames are
 * recorded too, so the order is checked: each temporary file is synced before it is renamed or committed,
 * the folder is synced after the files of a set are written and before the commit marker is, and after the
 * marker and the renames. A crash (power loss) between any two steps then finds the old set or the new one.
 */
import { test, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { writeFileAtomic, writeFileSet } from '../../src/certs/atomic.js';

afterEach(() => mock.restoreAll());

/** The order of syncs (file or folder, by name) and renames the code under test makes. */
function recordSyncs(dir: string): string[] {
  const events: string[] = [];
  const name = (p: string) => (p === dir ? '<dir>' : basename(p));
  const open = fs.open;
  mock.method(fs, 'open', async (...args: Parameters<typeof fs.open>) => {
    const h = await open(...args);
    const path = String(args[0]);
    const sync = h.sync.bind(h);
    h.sync = async () => {
      await sync();
      events.push(`sync ${name(path)}`);
    };
    return h;
  });
  const rename = fs.rename;
  mock.method(fs, 'rename', async (from: string, to: string) => {
    await rename(from, to);
    events.push(`rename ${name(from)} -> ${name(to)}`);
  });
  const rm = fs.rm;
  mock.method(fs, 'rm', async (path: string, opts?: Parameters<typeof fs.rm>[1]) => {
    await rm(path, opts);
    events.push(`rm ${name(path)}`);
  });
  return events;
}

const at = (events: string[], re: RegExp) => {
  const i = events.findIndex((e) => re.test(e));
  assert.ok(i >= 0, `no ${re} in ${JSON.stringify(events)}`);
  return i;
};
const lastAt = (events: string[], re: RegExp) => events.length - 1 - at([...events].reverse(), re);

test('atomic write: the temporary file is synced before the rename, and the folder after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-sync-'));
  const events = recordSyncs(dir);
  await writeFileAtomic(join(dir, 'account.json'), '{"k":1}', 0o600);
  mock.restoreAll();
  assert.equal(events.length, 3, JSON.stringify(events));
  assert.match(events[0]!, /^sync \.account\.json\.tmp-[0-9a-f]{12}$/);
  assert.match(events[1]!, /^rename \.account\.json\.tmp-[0-9a-f]{12} -> account\.json$/);
  assert.equal(events[2], 'sync <dir>');
  assert.equal(events[0]!.slice('sync '.length), events[1]!.split(' ')[1], 'the file synced is the file renamed');
  assert.equal(readFileSync(join(dir, 'account.json'), 'utf8'), '{"k":1}');
});

test('atomic set: each new file is synced, then the folder, before the commit marker; the folder again after the marker, after the renames and after the marker is removed', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'cw-sync-')), 'live');
  await fs.mkdir(dir);
  const events = recordSyncs(dir);
  await writeFileSet(dir, [
    { name: 'privkey.pem', data: 'KEY', mode: 0o600 },
    { name: 'fullchain.pem', data: 'CHAIN', mode: 0o644 },
  ], 0o700);
  mock.restoreAll();
  const syncKey = at(events, /^sync privkey\.pem\.new$/);
  const syncChain = at(events, /^sync fullchain\.pem\.new$/);
  const syncMarker = at(events, /^sync \.\.commit\.tmp-[0-9a-f]{12}$/);
  const commit = at(events, /^rename \.\.commit\.tmp-[0-9a-f]{12} -> \.commit$/);
  const renameKey = at(events, /^rename privkey\.pem\.new -> privkey\.pem$/);
  const renameChain = at(events, /^rename fullchain\.pem\.new -> fullchain\.pem$/);
  const dirSyncs = events.flatMap((e, i) => (e === 'sync <dir>' ? [i] : []));
  const firstRename = Math.min(renameKey, renameChain);
  const lastRename = Math.max(renameKey, renameChain);
  assert.ok(Math.max(syncKey, syncChain) < syncMarker, `both files synced before the marker is written: ${JSON.stringify(events)}`);
  assert.ok(dirSyncs.some((i) => i > Math.max(syncKey, syncChain) && i < syncMarker), `the folder (the new files' names) is synced before the marker is written: ${JSON.stringify(events)}`);
  assert.ok(syncMarker < commit, 'the marker is synced before it is renamed into place');
  assert.ok(dirSyncs.some((i) => i > commit && i < firstRename), `the marker's name is synced before any file is renamed: ${JSON.stringify(events)}`);
  const unmark = at(events, /^rm \.commit$/);
  assert.ok(dirSyncs.some((i) => i > lastRename && i < unmark), `the renames are synced before the marker is removed: ${JSON.stringify(events)}`);
  assert.equal(lastAt(events, /^sync <dir>$/), events.length - 1, 'the last step is a folder sync (the marker removed)');
  assert.ok(unmark < events.length - 1);
  assert.deepEqual(readdirSync(dir).sort(), ['fullchain.pem', 'privkey.pem']);
});
