/**
 * Issue 23 (mutation run of src/certs/store.ts), the parts other than reading a certificate set: the kept order
 * (issue 20) and the kept download (issue 17 item 0) as an operator finds them after a crash, the ARI record,
 * archiving a decommissioned certificate, the list of names, and the change stamp the store index reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore, statusFrom, type CertBundle, type IssuedRecord, type PendingOrder } from '../../src/certs/store.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { FilesStore } from '../../src/stores/files/files-store.js';
import { redis as redisEntry } from '../../src/stores/redis/entry.js';
import { StoreUnavailableError, type Store } from '../../src/stores/store.js';
import type { HeldLock } from '../../src/lock.js';
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../src/log.js';
import { startRedis } from '../support/redis-server.js';
import { execFileSync, spawnSync } from 'node:child_process';

const NAME = 'shop.example.com';
const tmp = () => mkdtempSync(join(tmpdir(), 'cw-store-m-'));
const open = (dir = tmp()) => ({ dir, store: new LocalStore(new FilesStore(dir)) });

/** A CA of the test's own with P-256 keys (RSA keys would cost seconds per test on a loaded machine). */
function ecCa() {
  const dir = tmp();
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=certwrangler store test CA', '-days', '365');
  let n = 0;
  return {
    cert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    leaf(names: string[], o: { days?: number } = {}) {
      const i = n++;
      ssl('req', '-x509', ...ec, '-keyout', `l${i}.key`, '-out', `l${i}.pem`, '-subj', '/', '-addext', `subjectAltName=${names.map((x) => `DNS:${x}`).join(',')}`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-days', String(o.days ?? 6));
      return { cert: readFileSync(join(dir, `l${i}.pem`), 'utf8'), key: readFileSync(join(dir, `l${i}.key`), 'utf8') };
    },
  };
}
const ca = ecCa();

async function placeholder(name = NAME): Promise<CertBundle> {
  const ss = await createSelfSigned([name], { sharedKey: true });
  return { name, names: [name], key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' };
}

test('kept order: written as a secret, read back, dropped; a record that is missing a part or does not parse is no order', async () => {
  const { dir, store } = open();
  const rec: PendingOrder = { name: NAME, names: [NAME], directoryUrl: 'https://ca.test/dir', orderUrl: 'https://ca.test/order/1', key: 'KEY PEM', createdAt: '2027-01-01T00:00:00.000Z' };
  assert.equal(await store.readOrder(NAME), undefined);
  await store.keepOrder(rec);
  const file = join(dir, 'certs', NAME, 'order.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(await store.readOrder(NAME), rec);
  await store.dropOrder(NAME);
  assert.equal(existsSync(file), false);
  assert.equal(await store.readOrder(NAME), undefined);
  const { key: _k, ...noKey } = rec;
  const { orderUrl: _o, ...noOrder } = rec;
  const { directoryUrl: _d, ...noDirectory } = rec;
  for (const bad of ['{"orderUrl": ', 'null', JSON.stringify(noKey), JSON.stringify(noOrder), JSON.stringify(noDirectory), JSON.stringify({ ...rec, names: NAME }), JSON.stringify({ ...rec, key: 1 })]) {
    writeFileSync(file, bad);
    assert.equal(await store.readOrder(NAME), undefined, bad);
  }
});

test('ARI record: written and read back; one without its certificate id or next fetch time, or that does not parse, is none', async () => {
  const { dir, store } = open();
  assert.equal(await store.readAri(NAME), undefined);
  const state = { certId: 'aaaa.bbbb', nextFetch: '2027-01-02T00:00:00.000Z', window: { start: '2027-02-01T00:00:00.000Z', end: '2027-02-03T00:00:00.000Z' } } as unknown as Parameters<LocalStore['writeAri']>[1];
  await store.writeAri(NAME, state);
  assert.deepEqual(await store.readAri(NAME), state);
  const file = join(dir, 'certs', NAME, 'ari.json');
  for (const bad of ['{', 'null', '{"nextFetch":"2027-01-02T00:00:00.000Z"}', '{"certId":"aaaa.bbbb"}', '{"certId":1,"nextFetch":"x"}']) {
    writeFileSync(file, bad);
    assert.equal(await store.readAri(NAME), undefined, bad);
  }
});

test('archive: the certificate\'s whole folder, key included, moves to archive/<name>-<time>; the store no longer has it', async () => {
  const { dir, store } = open();
  const b = await placeholder();
  await store.write(b);
  const at = new Date('2027-03-04T05:06:07.089Z');
  const where = await store.archive(NAME, at);
  assert.equal(where, join(dir, 'archive', `${NAME}-2027-03-04T05-06-07-089Z`));
  assert.equal(readFileSync(join(where, 'privkey.pem'), 'utf8'), b.key);
  assert.equal((await store.read(NAME)).state, 'absent');
  await assert.rejects(store.archive('../etc', at), /cannot be used as a certificate folder name/);
});

test('names: every certificate folder, skipping a name that could not be one', async () => {
  const { dir, store } = open();
  assert.deepEqual(await store.names(), []);
  await store.write(await placeholder('a.example.com'));
  await store.write(await placeholder('_.example.com'));
  mkdirSync(join(dir, 'certs', 'Upper.Example.com'));
  mkdirSync(join(dir, 'certs', '.hidden'));
  assert.deepEqual((await store.names()).sort(), ['_.example.com', 'a.example.com']);
});

test('stamp: none without a folder; it changes when the set is written again, and when cert.pem is copied over in place', async () => {
  const { dir, store } = open();
  assert.equal(await store.stamp(NAME), undefined);
  await store.writeStatus('only-status.example.com', { failures: 1 });
  assert.ok(await store.stamp('only-status.example.com'), 'a folder without cert.pem has a stamp');
  await store.write(await placeholder());
  const first = await store.stamp(NAME);
  assert.ok(first && /^[^/]+\/[^/]+$/.test(first), first);
  assert.equal(await store.stamp(NAME), first, 'unchanged when nothing changed');
  await new Promise((r) => setTimeout(r, 10));
  await store.write(await placeholder());
  const second = await store.stamp(NAME);
  assert.notEqual(second, first);
  await new Promise((r) => setTimeout(r, 10));
  const certFile = join(dir, 'certs', NAME, 'cert.pem');
  writeFileSync(certFile, readFileSync(certFile, 'utf8'));
  assert.notEqual(await store.stamp(NAME), second);
});

/** What the CA issued for NAME, kept as issued.json the way the pass keeps it. */
function issued(leaf: { cert: string; key: string }, over: Partial<IssuedRecord> = {}): IssuedRecord {
  return { name: NAME, names: [NAME], kind: 'staging', directoryUrl: 'https://ca.test/dir', orderUrl: 'https://ca.test/order/9', key: leaf.key, pem: leaf.cert + ca.cert, issuedAt: '2027-01-01T00:00:00.000Z', ...over };
}

test('kept download: the next read stores it (with its chain and order) over a placeholder, and forgets it', async () => {
  const { dir, store } = open();
  await store.write(await placeholder());
  const leaf = ca.leaf([NAME, `www.${NAME}`]);
  await store.keepIssued(issued(leaf, { names: [NAME, `www.${NAME}`], profile: 'tlsserver' }));
  const kept = join(dir, 'certs', NAME, 'issued.json');
  assert.equal(statSync(kept).mode & 0o777, 0o600);
  const planned = await store.read(NAME, { recover: false });
  assert.ok(planned.state === 'present' && planned.bundle.kind === 'self-signed', 'plan reads without storing it');
  const r = await store.read(NAME);
  assert.equal(r.state, 'present');
  if (r.state !== 'present') return;
  assert.deepEqual([r.bundle.cert, r.bundle.chain, r.bundle.key, r.bundle.kind, r.bundle.profile], [leaf.cert, ca.cert, leaf.key, 'staging', 'tlsserver']);
  assert.deepEqual([r.meta.orderUrl, r.meta.issuedAt, r.meta.names], ['https://ca.test/order/9', '2027-01-01T00:00:00.000Z', [NAME, `www.${NAME}`]]);
  assert.equal(existsSync(kept), false);
});

test('kept download: one that is not usable (key not its own, a name it does not cover, no certificate) is set aside, never deleted; the set stays', async () => {
  const leaf = ca.leaf([NAME]);
  const other = ca.leaf([NAME]);
  for (const rec of [issued(leaf, { key: other.key }), issued(leaf, { names: [NAME, `www.${NAME}`] }), issued(leaf, { pem: 'not a certificate' })]) {
    const { dir, store } = open();
    const b = await placeholder();
    await store.write(b);
    await store.keepIssued(rec);
    const r = await store.read(NAME);
    assert.ok(r.state === 'present' && r.bundle.cert === b.cert, 'the placeholder stays');
    const files = readdirSync(join(dir, 'certs', NAME));
    assert.equal(files.includes('issued.json'), false);
    const aside = files.filter((f) => /^issued-unusable-\d+\.json$/.test(f));
    assert.equal(aside.length, 1, files.join(' '));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'certs', NAME, aside[0]!), 'utf8')), rec);
  }
});

test('kept download: one older than the certificate in place is forgotten and the newer one stays; with no set in place it is stored', async () => {
  const { store } = open();
  const newer = ca.leaf([NAME], { days: 30 });
  await store.write({ name: NAME, names: [NAME], key: newer.key, cert: newer.cert, chain: ca.cert, kind: 'staging', directoryUrl: 'https://ca.test/dir' });
  await store.keepIssued(issued(ca.leaf([NAME], { days: 6 })));
  const r = await store.read(NAME);
  assert.ok(r.state === 'present' && r.bundle.cert === newer.cert);
  assert.deepEqual(readdirSync(store.certDir(NAME)).filter((f) => f.startsWith('issued')), [], 'forgotten, not set aside');
  const { dir: d2, store: fresh } = open();
  const leaf = ca.leaf([NAME]);
  await fresh.keepIssued(issued(leaf));
  const f = await fresh.read(NAME);
  assert.ok(f.state === 'present' && f.bundle.cert === leaf.cert);
  assert.equal(existsSync(join(d2, 'certs', NAME, 'issued.json')), false);
  const { dir: d3, store: torn } = open();
  await torn.keepIssued(issued(leaf));
  writeFileSync(join(d3, 'certs', NAME, 'issued.json'), '{"name":');
  const t = await torn.read(NAME);
  assert.equal(t.state, 'unreadable');
  assert.match(t.state === 'unreadable' ? t.error : '', /^cannot recover .*: issued\.json: /);
});

test('on Redis: no certificate folder on this host (certDir says so); the stamp moves with each write into the folder; secrets are sealed; Redis unreachable is not "no record"', async () => {
  const server = await startRedis(join(tmp(), 'redis'));
  // A failing test file is ended at once by the mutation run (forceBail), before any finally: Redis goes with it.
  const shutdown = () => void spawnSync('redis-cli', ['-p', String(server.port), 'SHUTDOWN', 'NOSAVE'], { timeout: 5000 });
  process.once('exit', shutdown);
  const env = { STORE: 'redis', REDIS_URL: server.url, REDIS_PREFIX: 'store-m:', LEASE_TTL: '15s', REDIS_TIMEOUT: '300ms', STORE_ENCRYPTION_KEY: randomBytes(32).toString('hex') };
  const backend = redisEntry.create(redisEntry.fromEnv(env), { log: createLogger('silent') });
  let lock: HeldLock | undefined;
  try {
    await backend.init();
    lock = await backend.lock({ waitMs: 0 });
    const store = new LocalStore(backend);
    assert.equal(store.localDir(NAME), undefined);
    assert.throws(() => store.certDir(NAME), new RegExp(`^Error: store: Redis redis://127\\.0\\.0\\.1:${server.port}/0 keeps no certificate folders on this host \\(only STORE=files does\\)$`));
    assert.equal(store.shown(NAME, 'cert.pem'), `certs/${NAME}/cert.pem in Redis redis://127.0.0.1:${server.port}/0`);
    assert.equal(await store.stamp(NAME), undefined);
    const stamps = [await store.stamp(NAME)];
    for (const f of ['cert.pem', 'privkey.pem', 'chain.pem', 'meta.json', 'status.json', 'revoked.json', 'ari.json', 'issued.json']) {
      await backend.write(`certs/${NAME}/${f}`, `${f} 1`, f === 'privkey.pem' || f === 'issued.json' ? { secret: true } : {});
      const s = await store.stamp(NAME);
      assert.ok(!stamps.includes(s), `${f}: ${s}`);
      stamps.push(s);
    }
    // The stamp is the folder's generation (issue 22): any write into the folder moves it, a write elsewhere not.
    await backend.write(`certs/${NAME}/notes.txt`, 'not read by the index');
    const afterNotes = await store.stamp(NAME);
    assert.ok(!stamps.includes(afterNotes), 'a write into the folder moves it');
    await backend.write(`certs/other.example/notes.txt`, 'another folder');
    assert.equal(await store.stamp(NAME), afterNotes, "another folder's write moves nothing");
    // Secrets are encrypted at rest: the key of a set, of a kept download and of a kept order never shows in Redis.
    const leaf = ca.leaf([NAME]);
    await store.write({ name: NAME, names: [NAME], key: leaf.key, cert: leaf.cert, chain: ca.cert, kind: 'staging', directoryUrl: 'https://ca.test/dir' });
    await store.keepIssued(issued(leaf));
    await store.keepOrder({ name: NAME, names: [NAME], directoryUrl: 'https://ca.test/dir', orderUrl: 'https://ca.test/order/1', key: leaf.key, createdAt: '2027-01-01T00:00:00.000Z' });
    for (const f of ['privkey.pem', 'issued.json', 'order.json']) {
      const raw = server.cli('HGET', `store-m:store:file:certs/${NAME}/${f}`, 'data');
      assert.match(raw, /^enc:v1:/, `${f} is stored sealed`);
      assert.ok(!raw.includes('PRIVATE KEY'), `${f} at rest`);
    }
    // Redis unreachable is not "no record": the ARI record, the status and a read of the set fail, saying so.
    server.pause();
    try {
      await assert.rejects(store.readAri(NAME), StoreUnavailableError);
      await assert.rejects(store.readStatus(NAME), StoreUnavailableError);
      await assert.rejects(store.read(NAME), StoreUnavailableError);
    } finally {
      server.resume();
    }
  } finally {
    await lock?.release();
    await backend.close();
    await server.stop();
    process.off('exit', shutdown);
  }
});

test('kept download: stored over a CA certificate that expires before it; one identical to the set in place (the pass stored it, then stopped) is only forgotten', async () => {
  const { dir, store } = open();
  const older = ca.leaf([NAME], { days: 6 });
  await store.write({ name: NAME, names: [NAME], key: older.key, cert: older.cert, chain: ca.cert, kind: 'staging', directoryUrl: 'https://ca.test/dir' }, { issuedAt: new Date('2026-12-01T00:00:00.000Z') });
  const same = await store.read(NAME);
  await store.keepIssued(issued(older));
  const r = await store.read(NAME);
  assert.ok(r.state === 'present' && same.state === 'present');
  assert.deepEqual(r.meta, same.meta, 'the set in place is not written again');
  assert.equal(existsSync(join(dir, 'certs', NAME, 'issued.json')), false);
  const longer = ca.leaf([NAME], { days: 30 });
  await store.keepIssued(issued(longer));
  const after = await store.read(NAME);
  assert.ok(after.state === 'present' && after.bundle.cert === longer.cert, 'the later expiry is stored');
});

test('kept download: its whole chain is kept, each intermediate as downloaded', async () => {
  const { store } = open();
  const leaf = ca.leaf([NAME]);
  const other = ecCa();
  await store.keepIssued(issued(leaf, { pem: leaf.cert + ca.cert + other.cert }));
  const r = await store.read(NAME);
  assert.ok(r.state === 'present');
  assert.equal(r.bundle.chain, ca.cert + other.cert);
});

test('kept download: a usable one is stored over a set whose cert.pem no longer parses, and never thrown away', async () => {
  const { dir, store } = open();
  await store.write(await placeholder());
  writeFileSync(join(dir, 'certs', NAME, 'cert.pem'), '-----BEGIN CERTIFICATE-----\ntorn\n');
  const leaf = ca.leaf([NAME]);
  await store.keepIssued(issued(leaf));
  const r = await store.read(NAME);
  assert.ok(r.state === 'present' && r.bundle.cert === leaf.cert, r.state === 'unreadable' ? r.error : r.state);
  assert.deepEqual(readdirSync(join(dir, 'certs', NAME)).filter((f) => f.startsWith('issued')), []);
});

/**
 * A store with only what the Store interface requires (no readFolder, stamps or folderStamps), as a new adapter
 * may be, over a FilesStore; `over` replaces some of its methods.
 */
function plainStore(inner: FilesStore, over: Partial<Store> = {}): Store {
  return {
    kind: 'plain',
    where: 'a plain test store',
    init: () => inner.init(),
    read: (p) => inner.read(p),
    write: (p, d, o) => inner.write(p, d, o),
    writeSet: (d, f) => inner.writeSet(d, f),
    recover: (d) => inner.recover(d),
    list: (d) => inner.list(d),
    stamp: (p) => inner.stamp(p),
    remove: (p) => inner.remove(p),
    move: (a, b) => inner.move(a, b),
    lock: (o) => inner.lock(o),
    close: () => inner.close(),
    ...over,
  };
}

test('stamps on a store with per-file stamps only: every file the index reads moves its certificate\'s stamp, and only that one', async () => {
  const dir = tmp();
  const store = new LocalStore(plainStore(new FilesStore(dir)));
  const OTHER = 'other.example.com';
  await store.write(await placeholder());
  await store.write(await placeholder(OTHER));
  assert.deepEqual(await store.stamps(['none.example.com']), [undefined], 'no folder, no stamp');
  let [mine, theirs] = await store.stamps([NAME, OTHER]);
  assert.ok(mine && theirs);
  for (const f of ['cert.pem', 'privkey.pem', 'chain.pem', 'meta.json', 'status.json', 'revoked.json', 'ari.json', 'issued.json']) {
    writeFileSync(join(dir, 'certs', NAME, f), `changed by hand: ${f}`);
    const [m, t] = await store.stamps([NAME, OTHER]);
    assert.notEqual(m, mine, `${f} changed by hand moves the stamp`);
    assert.equal(t, theirs, `${f}: the other certificate's stamp stays`);
    mine = m;
  }
});

test('a read on a store that becomes unreachable during recovery, or while reading a kept download, stops (StoreUnavailableError), never "unreadable"', async () => {
  const down = async () => {
    throw new StoreUnavailableError('the store cannot be reached');
  };
  const dir = tmp();
  const inner = new FilesStore(dir);
  await new LocalStore(inner).write(await placeholder());
  await assert.rejects(new LocalStore(plainStore(inner, { recover: down })).read(NAME), StoreUnavailableError);
  await new LocalStore(inner).keepIssued(issued(ca.leaf([NAME])));
  // Down for the recovery's read of the kept download only: the read of the folder after it would succeed.
  let downOnce = true;
  const readIssuedDown = plainStore(inner, {
    read: (p) => {
      if (!p.endsWith('/issued.json') || !downOnce) return inner.read(p);
      downOnce = false;
      return down();
    },
  });
  await assert.rejects(new LocalStore(readIssuedDown).read(NAME), StoreUnavailableError);
});

test('a cert.pem the store cannot read makes the copy unreadable with that read\'s error, its runs of white space made one space', async () => {
  const dir = tmp();
  const inner = new FilesStore(dir);
  await new LocalStore(inner).write(await placeholder());
  const failing = plainStore(inner, {
    read: async (p) => {
      if (p.endsWith('/cert.pem')) throw Object.assign(new Error('EIO:  i/o error,\n  read cert.pem'), { code: 'EIO' });
      return inner.read(p);
    },
  });
  const r = await new LocalStore(failing).read(NAME);
  assert.deepEqual(r, { state: 'unreadable', error: 'EIO: i/o error, read cert.pem' });
});

test('a settled folder is read without recovery; one with a leftover .new file is recovered, then read as the set in place', async () => {
  const dir = tmp();
  const inner = new FilesStore(dir);
  let recovers = 0;
  const recover = inner.recover.bind(inner);
  inner.recover = async (d: string) => {
    recovers++;
    return recover(d);
  };
  const store = new LocalStore(inner);
  const b = await placeholder();
  await store.write(b);
  recovers = 0;
  assert.equal((await store.read(NAME)).state, 'present');
  assert.equal(recovers, 0, 'nothing to recover, no recovery (issue 22: a cold pass recovers only what needs it)');
  writeFileSync(join(dir, 'certs', NAME, 'cert.pem.new'), 'half of a write that died before its marker');
  const r = await store.read(NAME);
  assert.equal(recovers, 1);
  assert.ok(r.state === 'present' && r.bundle.cert === b.cert, 'the set in place, the leftover discarded');
  assert.equal(existsSync(join(dir, 'certs', NAME, 'cert.pem.new')), false);
});

test('status.json and ari.json that cannot be read (not an unreachable store) are no failures and no ARI record; "null" is no failures', async () => {
  const dir = tmp();
  const inner = new FilesStore(dir);
  const plain = new LocalStore(inner);
  await plain.writeStatus(NAME, { failures: 3 });
  await plain.writeAri(NAME, { certId: 'id', nextFetch: '2027-01-01T00:00:00.000Z' } as Parameters<LocalStore['writeAri']>[1]);
  const broken = new LocalStore(plainStore(inner, {
    read: async (p) => {
      if (p.endsWith('/status.json') || p.endsWith('/ari.json')) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      return inner.read(p);
    },
  }));
  assert.deepEqual(await broken.readStatus(NAME), { failures: 0 });
  assert.equal(await broken.readAri(NAME), undefined);
  assert.deepEqual(statusFrom('null'), { failures: 0 });
  assert.deepEqual(await plain.readStatus(NAME), { failures: 3 }, 'read back when readable');
});
