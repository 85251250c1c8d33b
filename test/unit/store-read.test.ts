/**
 * Issue 23: what the local store reports for each way a certificate folder can be broken, what it writes
 * (modes, meta.json), and the small files beside the certificates (status.json, issuers.json).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataDirError, isFolderSafeName, LocalStore, type CertBundle } from '../../src/certs/store.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

/** DATA_DIR of a files-backed LocalStore. */
const dataDirOf = (store: LocalStore) => (store.backend as FilesStore).dataDir;
const newStore = () => new LocalStore(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-store-read-'))));
const mode = (p: string) => statSync(p).mode & 0o777;

/** One shared key for every bundle (fast), unless `ownKey`. */
async function bundle(name: string, chain = '', ownKey = false): Promise<CertBundle> {
  const ss = await createSelfSigned([name, `www.${name}`], { sharedKey: !ownKey });
  return { name, names: [name, `www.${name}`], key: ss.key, cert: ss.cert, chain, kind: 'self-signed', directoryUrl: '' };
}

test('store: init creates DATA_DIR and certs/ at 0700 under umask 0; a DATA_DIR that cannot be made says which and why', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'cw-store-init-'));
  const store = new LocalStore(new FilesStore(join(parent, 'data')));
  const old = process.umask(0);
  try {
    await store.init();
  } finally {
    process.umask(old);
  }
  assert.equal(mode(join(parent, 'data')), 0o700);
  assert.equal(mode(join(parent, 'data', 'certs')), 0o700);
  writeFileSync(join(parent, 'a-file'), '');
  await assert.rejects(new LocalStore(new FilesStore(join(parent, 'a-file', 'data'))).init(), (e: Error) => {
    assert.match(e.message, /^DATA_DIR .*a-file\/data cannot be prepared \(ENOTDIR: .*\): certwrangler keeps its keys and certificates there and needs it writable by its own user$/);
    return true;
  });
});

test('store: the DATA_DIR error names a read-only volume and a permission problem in plain words', () => {
  const err = (code: string) => Object.assign(new Error(`${code}: raw`), { code });
  assert.match(dataDirError('/d', err('EROFS')).message, /^DATA_DIR \/d cannot be prepared \(the volume is read-only\)/);
  assert.match(dataDirError('/d', err('EACCES')).message, /\(permission denied\)/);
  assert.match(dataDirError('/d', err('EPERM')).message, /\(permission denied\)/);
  assert.match(dataDirError('/d', err('EIO')).message, /\(EIO: raw\)/);
});

test('store: a written set holds the key 0600, the public files 0644, fullchain = leaf + chain, and meta.json says what was issued when', async () => {
  const store = newStore();
  const chainPem = (await createSelfSigned(['intermediate.example'], { sharedKey: true })).cert;
  const b = { ...(await bundle('m.example.com', chainPem)), kind: 'staging' as const, directoryUrl: 'https://ca.example/dir' };
  await store.write(b, { orderUrl: 'https://ca.example/order/1', issuedAt: new Date('2027-01-02T03:04:05Z') });
  const dir = store.certDir('m.example.com');
  assert.equal(mode(join(dir, 'privkey.pem')), 0o600);
  for (const f of ['cert.pem', 'chain.pem', 'fullchain.pem', 'meta.json']) assert.equal(mode(join(dir, f)), 0o644, f);
  assert.equal(readFileSync(join(dir, 'fullchain.pem'), 'utf8'), b.cert + chainPem);
  assert.equal(readFileSync(join(dir, 'chain.pem'), 'utf8'), chainPem);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), {
    name: 'm.example.com',
    names: ['m.example.com', 'www.m.example.com'],
    kind: 'staging',
    directoryUrl: 'https://ca.example/dir',
    issuedAt: '2027-01-02T03:04:05.000Z',
    orderUrl: 'https://ca.example/order/1',
  });
  const r = await store.read('m.example.com');
  assert.ok(r.state === 'present');
  assert.deepEqual(r.bundle, b);
  assert.deepEqual([...r.info.names].sort(), ['m.example.com', 'www.m.example.com']);
  // Without an order URL (a placeholder), meta.json has none.
  await store.write(await bundle('p.example.com'));
  assert.ok(!('orderUrl' in JSON.parse(readFileSync(join(store.certDir('p.example.com'), 'meta.json'), 'utf8'))));
});

test('store: each broken folder is reported unreadable with its reason; an empty or missing one is absent', async () => {
  const store = newStore();
  await store.init();
  assert.deepEqual(await store.read('none.example.com'), { state: 'absent' });
  mkdirSync(store.certDir('empty.example.com'));
  assert.deepEqual(await store.read('empty.example.com'), { state: 'absent' });

  const b = await bundle('b.example.com');
  const dir = store.certDir('b.example.com');
  const reset = async () => {
    rmSync(dir, { recursive: true, force: true });
    await store.write(b);
  };
  const cases: [string, () => void, string | RegExp][] = [
    ['meta.json gone, cert.pem there', () => rmSync(join(dir, 'meta.json')), 'meta.json missing'],
    ['meta.json not JSON', () => writeFileSync(join(dir, 'meta.json'), '{"names":'), /JSON/],
    ['meta.json without names', () => writeFileSync(join(dir, 'meta.json'), '{"kind":"production"}'), 'meta.json is malformed'],
    ['meta.json without a kind', () => writeFileSync(join(dir, 'meta.json'), '{"names":["b.example.com"],"kind":1}'), 'meta.json is malformed'],
    ['meta.json null', () => writeFileSync(join(dir, 'meta.json'), 'null'), 'meta.json is malformed'],
    ['meta.json a folder', () => (rmSync(join(dir, 'meta.json')), mkdirSync(join(dir, 'meta.json'))), /^meta\.json: EISDIR/],
    ['privkey.pem not a key', () => writeFileSync(join(dir, 'privkey.pem'), 'not a key'), 'privkey.pem does not parse'],
    ['chain.pem gone', () => rmSync(join(dir, 'chain.pem')), /ENOENT.*chain\.pem/],
    ['a commit marker that cannot be read or removed (a folder)', () => mkdirSync(join(dir, '.commit')), /^cannot recover .*b\.example\.com: /],
  ];
  for (const [what, breakIt, reason] of cases) {
    await reset();
    breakIt();
    const r = await store.read('b.example.com');
    assert.equal(r.state, 'unreadable', what);
    if (r.state === 'unreadable') {
      if (typeof reason === 'string') assert.equal(r.error, reason, what);
      else assert.match(r.error, reason, what);
      assert.ok(!r.error.includes('\n'), `${what}: one line`);
    }
  }
  // A key that parses but belongs to another certificate is present, and says so.
  await reset();
  writeFileSync(join(dir, 'privkey.pem'), (await bundle('other.example.com', '', true)).key);
  const r = await store.read('b.example.com');
  assert.ok(r.state === 'present' && r.keyMatches === false);
});

test('store: plan reads without finishing an interrupted write; a pass finishes it', async () => {
  const store = newStore();
  const a = await bundle('c.example.com');
  const b = await bundle('c.example.com');
  await store.write(a);
  const dir = store.certDir('c.example.com');
  writeFileSync(join(dir, 'cert.pem.new'), b.cert);
  writeFileSync(join(dir, 'privkey.pem.new'), b.key);
  writeFileSync(join(dir, '.commit'), JSON.stringify(['privkey.pem', 'cert.pem']));
  const planned = await store.read('c.example.com', { recover: false });
  assert.ok(planned.state === 'present' && planned.bundle.cert === a.cert, 'plan sees the old set');
  assert.ok(readdirSync(dir).includes('.commit'), 'and leaves the marker');
  const read = await store.read('c.example.com');
  assert.ok(read.state === 'present' && read.bundle.cert === b.cert && read.keyMatches);
});

test('store: status.json defaults to no failures, is written 0600 and read back', async () => {
  const store = newStore();
  assert.deepEqual(await store.readStatus('s.example.com'), { failures: 0 });
  const status = { lastAttempt: '2027-01-01T00:00:00.000Z', lastError: 'the CA refused', failures: 2, nextAttempt: '2027-01-01T01:00:00.000Z' };
  await store.writeStatus('s.example.com', status);
  assert.deepEqual(await store.readStatus('s.example.com'), status);
  assert.equal(mode(join(store.certDir('s.example.com'), 'status.json')), 0o600);
  assert.equal(mode(store.certDir('s.example.com')), 0o700);
  writeFileSync(join(store.certDir('s.example.com'), 'status.json'), '{');
  assert.deepEqual(await store.readStatus('s.example.com'), { failures: 0 }, 'a torn status file is no failures, not an error');
});

test('store: issuers remembered together are all kept (0600); a known one is not written again; a torn file is empty', async () => {
  const store = newStore();
  await store.init();
  assert.deepEqual(await store.knownIssuers(), {});
  await Promise.all([store.rememberIssuer('CN=A', 'staging'), store.rememberIssuer('CN=B', 'production'), store.rememberIssuer('CN=C', 'production')]);
  assert.deepEqual(await store.knownIssuers(), { 'CN=A': 'staging', 'CN=B': 'production', 'CN=C': 'production' });
  const path = join(dataDirOf(store), 'issuers.json');
  assert.equal(mode(path), 0o600);
  const before = statSync(path).ino;
  await store.rememberIssuer('CN=A', 'staging');
  assert.equal(statSync(path).ino, before, 'nothing new: not rewritten');
  await store.rememberIssuer('CN=A', 'production');
  assert.equal((await store.knownIssuers())['CN=A'], 'production');
  // A failed write does not stop the next one.
  chmodSync(dataDirOf(store), 0o500);
  const failed = store.rememberIssuer('CN=D', 'staging');
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) await assert.rejects(failed);
  else await failed;
  chmodSync(dataDirOf(store), 0o700);
  await store.rememberIssuer('CN=E', 'staging');
  assert.equal((await store.knownIssuers())['CN=E'], 'staging');
  writeFileSync(path, '{"CN=A":');
  assert.deepEqual(await store.knownIssuers(), {});
});

test('store: certificate folder names: lower-case DNS-like names and _-prefixed ones; nothing with a slash, a leading dot or "..", nothing upper-case', () => {
  for (const ok of ['a.example.com', '_acme.example.com', 'x-1', '0.example', 'a_b']) assert.equal(isFolderSafeName(ok), true, ok);
  for (const bad of ['../etc', 'a/b', '.hidden', '', 'A.example.com', 'a..b', 'a b', '-x', 'a\\b', 'a\nb', 'é.example']) assert.equal(isFolderSafeName(bad), false, JSON.stringify(bad));
  assert.throws(() => new LocalStore(new FilesStore('/tmp/nowhere')).certDir('a..b'), /^Error: store: "a\.\.b" cannot be used as a certificate folder name$/);
});

// Issue 22 reads a folder with one listing and recovers only when it shows what an interrupted write leaves:
// the leftovers without a marker (the write died before its commit) must still be discarded by a read.
test('store: a read discards the leftovers of a write that died before its marker (".new" files alone, a temp file alone)', async () => {
  const store = newStore();
  const a = await bundle('d.example.com');
  const b = await bundle('d.example.com', '', true);
  await store.write(a);
  const dir = store.certDir('d.example.com');
  for (const leftover of [['cert.pem.new', b.cert], ['.privkey.pem.tmp-0123456789ab', b.key]] as const) {
    writeFileSync(join(dir, leftover[0]), leftover[1]);
    const read = await store.read('d.example.com');
    assert.ok(read.state === 'present' && read.bundle.cert === a.cert && read.keyMatches, `${leftover[0]}: the set before stays`);
    assert.ok(!readdirSync(dir).includes(leftover[0]), `${leftover[0]} is removed by the read`);
  }
});
