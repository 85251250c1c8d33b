/**
 * The store's index (issue 22 item 2) on the files store, through passes of one manager against the Rancher
 * simulator: a warm pass reads no file of a certificate that did not change (one stamp), and what an operator
 * changes by hand in DATA_DIR is seen by the next pass: a certificate copied over cert.pem and privkey.pem in
 * place, a revoked.json dropped into the folder, a folder taken away. On STORE=redis (a real redis-server) the same
 * changes made by another writer through the store (as `store migrate` or an operator's tool writes): each moves
 * the folder's generation, so the next pass reads those certificates again, with one MGET for all the stamps.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { parseCert } from '../../src/certs/parse.js';
import { LocalStore } from '../../src/certs/store.js';
import { FilesStore } from '../../src/stores/files/files-store.js';
import { indexOf } from '../../src/certs/index.js';
import { ownerDescription } from '../../src/orchestrators/rancher/rancher.js';
import { planPass, type PassReport } from '../../src/reconciler.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { simPool } from '../support/rancher-sim.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { redis as redisEntry } from '../../src/stores/redis/entry.js';
import type { HeldLock } from '../../src/lock.js';
import type { Store } from '../../src/stores/store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-index-'));
const sims = simPool();
let server: RedisServer;
const opened: { store: Store; lock?: HeldLock }[] = [];
before(async () => {
  server = await startRedis(join(base, 'redis'));
});
after(async () => {
  for (const o of opened) {
    await o.lock?.release();
    await o.store.close();
  }
  await server.stop();
  await sims.closeAll();
});

// Nothing is ordered in a plan; a directory that refuses connections makes sure of it.
const DIRECTORY = 'https://127.0.0.1:9/directory';
const NAMES = ['a.index-example.com', 'b.index-example.com', 'c.index-example.com'];

const resultOf = (r: PassReport, name: string) => r.results.find((x) => x.name === name)!;

test('a warm pass reads no file of an unchanged certificate, and sees what was changed by hand at the next pass', async () => {
  const sim = await sims.start();
  const dataDir = join(base, 'data');
  const seed = new LocalStore(new FilesStore(dataDir));
  await seed.init();
  for (const name of NAMES) {
    const c = await createSelfSigned([name], { sharedKey: true, days: 365 });
    await seed.write({ name, names: [name], key: c.key, cert: c.cert, chain: '', kind: 'production', directoryUrl: DIRECTORY });
    sim.addCertificate({ name, cert: c.cert, key: c.key, description: ownerDescription(parseCert(c.cert).fingerprintSha1) });
  }
  const env = { ...sim.env, DATA_DIR: dataDir, WEBROOT_DIR: join(base, 'www'), DOMAINS: NAMES.join(';'), STAGING: 'false', ACME_DIRECTORY_URL: DIRECTORY, LOG_LEVEL: 'silent' };
  // One manager's parts, kept from pass to pass as a running manager keeps them.
  const deps = await assemble(loadConfig(env), createLogger('silent'), { dryRun: true });
  const index = indexOf(deps.store);

  const first = await planPass(deps);
  for (const name of NAMES) assert.equal(resultOf(first, name).decision.reason, 'UpToDate', `${name}: ${resultOf(first, name).decision.message}`);
  assert.deepEqual(index.stats, { read: 3, kept: 0 }, 'the first pass reads every certificate');

  // What an entry holds between passes (issue 22): names once, meta without the order's URL or time of issue (read
  // with the full copy when a step needs them), one shared status for certificates without status.json.
  const held = index.peek(NAMES[0]!)!;
  assert.equal(held.local.state, 'indexed');
  if (held.local.state === 'indexed') {
    assert.deepEqual(Object.keys(held.local.meta).sort(), ['directoryUrl', 'kind', 'name', 'names']);
    assert.equal(held.local.meta.names, held.local.info.names, 'one array for the same names');
    assert.equal(held.local.info.names[0], held.name, 'the entry name, not a slice of the subjectAltName text');
    assert.deepEqual(held.local.info.names, [NAMES[0]]);
  }
  assert.deepEqual(held.status, { failures: 0 });
  assert.equal(held.status, index.peek(NAMES[1]!)!.status, 'no status.json: one shared status');

  const second = await planPass(deps);
  assert.deepEqual(index.stats, { read: 0, kept: 3 }, 'a warm pass reads none: one stamp each');
  assert.deepEqual(second.results.map((r) => r.decision.reason), ['UpToDate', 'UpToDate', 'UpToDate']);

  // By hand: a certificate due for renewal copied over a's files in place (same inodes, as `cp` does).
  const a = NAMES[0]!;
  const due = await createSelfSigned([a], { sharedKey: true, days: 10 });
  writeFileSync(join(dataDir, 'certs', a, 'cert.pem'), due.cert);
  writeFileSync(join(dataDir, 'certs', a, 'privkey.pem'), due.key);
  // By hand: b's certificate recorded as revoked (a new file in its folder).
  const b = NAMES[1]!;
  const bInfo = parseCert(sim.certByName(b)!.cert);
  writeFileSync(join(dataDir, 'certs', b, 'revoked.json'), JSON.stringify({ fingerprint: bInfo.fingerprint, serialNumber: bInfo.serialNumber, reason: 'keyCompromise', at: new Date().toISOString(), directoryUrl: DIRECTORY }));
  // By hand: c's folder moved out of the store.
  const c = NAMES[2]!;
  renameSync(join(dataDir, 'certs', c), join(base, 'c-moved-away'));

  const third = await planPass(deps);
  assert.deepEqual(index.stats, { read: 3, kept: 0 }, 'each changed certificate is read again');
  const ra = resultOf(third, a);
  assert.equal(ra.notAfter, parseCert(due.cert).notAfter.toISOString(), 'the copy made by hand is the local copy now');
  assert.notEqual(ra.decision.reason, 'UpToDate', ra.decision.message);
  assert.equal(resultOf(third, b).decision.reason, 'Revoked', resultOf(third, b).decision.message);
  assert.equal(resultOf(third, c).decision.reason, 'NoLocalCopy', resultOf(third, c).decision.message);

  const fourth = await planPass(deps);
  assert.equal(index.stats.read, 0, 'and then held again');
  assert.deepEqual(fourth.results.map((r) => r.decision.reason), third.results.map((r) => r.decision.reason));
});

test('redis: a warm pass stamps every certificate with one MGET, and sees what another writer changed through the store at the next pass', async () => {
  const sim = await sims.start();
  const storeEnv = { STORE: 'redis', REDIS_URL: server.url, REDIS_PREFIX: 'index1:' };
  // The other writer holds the lease (a plan takes none: it only reads).
  const writer = redisEntry.create(redisEntry.fromEnv(storeEnv), { log: createLogger('silent') });
  const o: { store: Store; lock?: HeldLock } = { store: writer };
  opened.push(o);
  await writer.init();
  o.lock = await writer.lock({ waitMs: 0 });
  const seed = new LocalStore(writer);
  await seed.init();
  for (const name of NAMES) {
    const c = await createSelfSigned([name], { sharedKey: true, days: 365 });
    await seed.write({ name, names: [name], key: c.key, cert: c.cert, chain: '', kind: 'production', directoryUrl: DIRECTORY });
    sim.addCertificate({ name, cert: c.cert, key: c.key, description: ownerDescription(parseCert(c.cert).fingerprintSha1) });
  }
  const env = { ...sim.env, ...storeEnv, WEBROOT_DIR: join(base, 'www-redis'), DATA_DIR: join(base, 'data-redis'), DOMAINS: NAMES.join(';'), STAGING: 'false', ACME_DIRECTORY_URL: DIRECTORY, LOG_LEVEL: 'silent' };
  const deps = await assemble(loadConfig(env), createLogger('silent'), { dryRun: true });
  opened.push({ store: deps.store.backend });
  const index = indexOf(deps.store);
  const calls = () => Object.fromEntries([...server.cli('INFO', 'commandstats').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));

  await planPass(deps);
  assert.deepEqual(index.stats, { read: 3, kept: 0 }, 'the first pass reads every certificate');
  const before = calls();
  const second = await planPass(deps);
  const after = calls();
  assert.deepEqual(index.stats, { read: 0, kept: 3 }, 'a warm pass reads none');
  assert.deepEqual(second.results.map((r) => r.decision.reason), ['UpToDate', 'UpToDate', 'UpToDate']);
  assert.equal((after.mget ?? 0) - (before.mget ?? 0), 1, 'the three stamps: one MGET');
  assert.ok((after.hget ?? 0) - (before.hget ?? 0) < NAMES.length, 'no HGET per file (8 a certificate before folder generations)');

  // Another writer: a certificate due for renewal over a's cert.pem and privkey.pem (not a set: file by file).
  const [a, b, c] = NAMES as [string, string, string];
  const due = await createSelfSigned([a], { sharedKey: true, days: 10 });
  await writer.write(`certs/${a}/cert.pem`, due.cert);
  await writer.write(`certs/${a}/privkey.pem`, due.key, { secret: true });
  const bInfo = parseCert(sim.certByName(b)!.cert);
  await writer.write(`certs/${b}/revoked.json`, JSON.stringify({ fingerprint: bInfo.fingerprint, serialNumber: bInfo.serialNumber, reason: 'keyCompromise', at: new Date().toISOString(), directoryUrl: DIRECTORY }));
  await writer.move(`certs/${c}`, `archive/${c}`);

  const third = await planPass(deps);
  assert.deepEqual(index.stats, { read: 3, kept: 0 }, 'each changed certificate is read again');
  assert.equal(resultOf(third, a).notAfter, parseCert(due.cert).notAfter.toISOString(), 'the other writer\'s copy is the local copy now');
  assert.notEqual(resultOf(third, a).decision.reason, 'UpToDate');
  assert.equal(resultOf(third, b).decision.reason, 'Revoked', resultOf(third, b).decision.message);
  assert.equal(resultOf(third, c).decision.reason, 'NoLocalCopy', resultOf(third, c).decision.message);
  await planPass(deps);
  assert.equal(index.stats.read, 0, 'and then held again');
});
