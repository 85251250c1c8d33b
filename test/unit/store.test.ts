import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, statSync, readdirSync, existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore, type CertBundle } from '../../src/certs/store.js';
import { recoverFileSet } from '../../src/certs/atomic.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

async function bundle(name: string): Promise<CertBundle> {
  const ss = await createSelfSigned([name]);
  return { name, names: [name], key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' };
}

test('store: a written certificate reads back; key 0600, folder 0700, no temp files left', async () => {
  const store = new LocalStore(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-store-'))));
  await store.init();
  const b = await bundle('a.example.com');
  await store.write(b);
  const dir = store.certDir('a.example.com');
  assert.equal(statSync(join(dir, 'privkey.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(dir).sort(), ['cert.pem', 'chain.pem', 'fullchain.pem', 'meta.json', 'privkey.pem']);
  const r = await store.read('a.example.com');
  assert.equal(r.state, 'present');
  if (r.state === 'present') {
    assert.equal(r.keyMatches, true);
    assert.equal(r.bundle.key, b.key);
  }
});

test('store: refuses a key that does not match, and keeps the old set', async () => {
  const store = new LocalStore(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-store-'))));
  const a = await bundle('a.example.com');
  const other = await bundle('a.example.com');
  await store.write(a);
  await assert.rejects(store.write({ ...other, key: a.key }), /key does not match/);
  assert.equal(readFileSync(join(store.certDir('a.example.com'), 'cert.pem'), 'utf8'), a.cert);
});

test('store: a write interrupted before its commit is discarded; after its commit it is completed', async () => {
  const store = new LocalStore(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-store-'))));
  const a = await bundle('a.example.com');
  const b = await bundle('a.example.com');
  await store.write(a);
  const dir = store.certDir('a.example.com');
  // Crash after writing some of the new files, before the commit marker.
  writeFileSync(join(dir, 'privkey.pem.new'), b.key);
  writeFileSync(join(dir, 'cert.pem.new'), b.cert.slice(0, 100));
  await recoverFileSet(dir);
  assert.ok(!existsSync(join(dir, 'privkey.pem.new')));
  let r = await store.read('a.example.com');
  assert.ok(r.state === 'present' && r.keyMatches && r.bundle.cert === a.cert, 'the old certificate and key are intact');

  // Crash after the commit marker, with the key renamed but not the certificate.
  writeFileSync(join(dir, 'cert.pem.new'), b.cert);
  writeFileSync(join(dir, 'privkey.pem'), b.key);
  writeFileSync(join(dir, '.commit'), JSON.stringify(['privkey.pem', 'cert.pem']));
  r = await store.read('a.example.com');
  assert.ok(r.state === 'present' && r.keyMatches && r.bundle.cert === b.cert, 'the new set is completed on read');
  assert.ok(!existsSync(join(dir, '.commit')));
});

test('store: a truncated certificate is reported as unreadable, with the reason', async () => {
  const store = new LocalStore(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-store-'))));
  const a = await bundle('a.example.com');
  await store.write(a);
  writeFileSync(join(store.certDir('a.example.com'), 'cert.pem'), a.cert.slice(0, 200));
  const r = await store.read('a.example.com');
  assert.equal(r.state, 'unreadable');
  if (r.state === 'unreadable') assert.match(r.error, /PEM|certificate/i);
});

test('store: a name that would leave the store is refused', () => {
  const store = new LocalStore(new FilesStore('/tmp/nowhere'));
  for (const bad of ['../etc', 'a/b', '.hidden', '']) assert.throws(() => store.certDir(bad), /cannot be used as a certificate folder/);
});

test('store: a set whose temporary files another process removed before the commit is not committed; the old key and certificate stay together', async () => {
  const store = new LocalStore(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-store-'))));
  const a = await bundle('a.example.com');
  const b = await bundle('a.example.com');
  await store.write(a);
  const dir = store.certDir('a.example.com');
  // A second manager on the same DATA_DIR runs its recovery (it sees no commit marker) just after this write
  // has put down privkey.pem.new and before cert.pem.new: the real recovery, at that exact moment.
  const open = fsp.open;
  let raced = false;
  fsp.open = (async (...args: Parameters<typeof open>) => {
    if (!raced && String(args[0]).endsWith('/cert.pem.new')) {
      raced = true;
      await recoverFileSet(dir);
    }
    return open(...args);
  }) as typeof open;
  try {
    await assert.rejects(store.write(b), /privkey\.pem\.new is missing after it was written .*not committed/);
  } finally {
    fsp.open = open;
  }
  assert.ok(raced);
  const r = await store.read('a.example.com');
  assert.ok(r.state === 'present' && r.keyMatches, 'the key still matches the certificate');
  assert.equal(r.state === 'present' && r.bundle.cert, a.cert, 'the old set, whole');
  assert.deepEqual(readdirSync(dir).sort(), ['cert.pem', 'chain.pem', 'fullchain.pem', 'meta.json', 'privkey.pem'], 'nothing half-written is left');
});
