/**
 * `certwrangler store migrate` (issue 20 item 1): a files store holding a certificate set, an account key and the
 * books, copied to a real redis-server (keys sealed with STORE_ENCRYPTION_KEY) and back into a new DATA_DIR,
 * byte for byte, with the key still matching its certificate and the files' modes as the certificate store sets them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { keyMatchesCert } from '../../src/certs/parse.js';
import { createLogger } from '../../src/log.js';
import { FilesStore } from '../../src/stores/files/files-store.js';
import { migrateCommand } from '../../src/stores/migrate-command.js';
import { loadConfig } from '../../src/config.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { filesUnder, runCli } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-migrate-'));
let server: RedisServer;
before(async () => {
  server = await startRedis(join(base, 'redis'));
});
after(async () => {
  await server.stop();
  rmSync(base, { recursive: true, force: true });
});

const KEY = randomBytes(32).toString('base64');

/** A DATA_DIR as a manager leaves it: a certificate set, an account key, books at the top and in folders. */
async function filesStoreWithACertificate(dir: string): Promise<void> {
  const store = new FilesStore(dir);
  await store.init();
  const ss = await createSelfSigned(['m.example', 'www.m.example']);
  await store.writeSet('certs/m.example', [
    { name: 'privkey.pem', data: ss.key, secret: true },
    { name: 'cert.pem', data: ss.cert, mode: 0o644 },
    { name: 'chain.pem', data: '', mode: 0o644 },
    { name: 'fullchain.pem', data: ss.cert, mode: 0o644 },
    { name: 'meta.json', data: '{"names":["m.example","www.m.example"]}\n', mode: 0o644 },
  ]);
  await store.write('certs/m.example/status.json', '{"lastError":null}\n');
  const account = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await store.write('accounts/pebble.example/account.key', account, { secret: true });
  await store.write('rancher-reloads.json', '{"version":1,"pending":{}}\n');
  await store.write('claims.json', '{"version":1}\n');
  // Beside the store in DATA_DIR, not of it: CERTS_DIR's default home (a link per certificate) and the status
  // API's token. Neither may be copied: the links would come back as folders, the token would leave its host.
  mkdirSync(join(dir, 'live', 'versions', 'm.example-1'), { recursive: true });
  writeFileSync(join(dir, 'live', 'versions', 'm.example-1', 'cert.pem'), ss.cert);
  symlinkSync('versions/m.example-1', join(dir, 'live', 'm.example'));
  writeFileSync(join(dir, 'status-token'), 'not-to-be-copied\n', { mode: 0o600 });
}

/** What the store holds of a DATA_DIR: everything but CERTS_DIR's default home and the status token. */
const storeFilesUnder = (dir: string) => filesUnder(dir).map((f) => f.slice(dir.length + 1)).filter((f) => !f.startsWith('live/') && f !== 'status-token').sort();

const redisEnv = (prefix: string, extra: Record<string, string> = {}) => ({ STORE: 'redis', REDIS_URL: server.url, REDIS_PREFIX: prefix, LEASE_TTL: '5s', LOCK_WAIT: '0', ...extra });

test('store migrate: files → redis → files copies every file, seals the private keys in Redis, and the copy back is byte for byte the original', async () => {
  const a = join(base, 'a');
  await filesStoreWithACertificate(a);
  const toRedis = await runCli(['store', 'migrate', '--from', 'files', '--to', 'redis'], { DATA_DIR: a, ...redisEnv('m1:', { STORE_ENCRYPTION_KEY: KEY }) });
  assert.equal(toRedis.code, 0, toRedis.stdout + toRedis.stderr);
  assert.match(toRedis.stdout, /copied 9 files \(2 folders, 2 private keys, \d+ bytes\) from DATA_DIR .* to Redis redis:\/\/127\.0\.0\.1:\d+\/0, and read every one back equal/);
  // At rest: the keys are sealed, the certificate is not.
  assert.match(server.cli('HGET', 'm1:store:file:certs/m.example/privkey.pem', 'data'), /^enc:v1:/);
  assert.match(server.cli('HGET', 'm1:store:file:accounts/pebble.example/account.key', 'data'), /^enc:v1:/);
  assert.match(server.cli('HGET', 'm1:store:file:certs/m.example/cert.pem', 'data'), /BEGIN CERTIFICATE/);
  assert.equal(server.cli('EXISTS', 'm1:lease').trim(), '0', 'the lease is released');

  // A second run refuses to copy over what is there (in-process from here: the same command, without a start-up).
  const b = join(base, 'b');
  const config = loadConfig({ DATA_DIR: b });
  const log = createLogger('silent');
  const said: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => said.push(s) > 0) as typeof process.stderr.write;
  try {
    assert.equal(await migrateCommand(loadConfig({ DATA_DIR: a }), log, { from: 'files', to: 'redis', force: false }, redisEnv('m1:', { STORE_ENCRYPTION_KEY: KEY })), 1);
  } finally {
    process.stderr.write = write;
  }
  assert.match(said.join(''), /already holds 9 files \(claims\.json, rancher-reloads\.json, accounts\/pebble\.example\/account\.key, certs\/m\.example\/cert\.pem, certs\/m\.example\/chain\.pem, …\): refusing to copy over it.*--force/);

  // Back, into a new DATA_DIR.
  assert.equal(await migrateCommand(config, log, { from: 'redis', to: 'files', force: false }, redisEnv('m1:', { STORE_ENCRYPTION_KEY: KEY })), 0);
  const files = storeFilesUnder(a);
  assert.deepEqual(filesUnder(b).map((f) => f.slice(b.length + 1)).sort(), files, 'neither CERTS_DIR\'s links nor the status token were copied');
  for (const f of files) {
    assert.equal(readFileSync(join(b, f), 'utf8'), readFileSync(join(a, f), 'utf8'), f);
    assert.equal(statSync(join(b, f)).mode & 0o777, statSync(join(a, f)).mode & 0o777, `${f}: mode`);
  }
  assert.ok(keyMatchesCert(readFileSync(join(b, 'certs/m.example/privkey.pem'), 'utf8'), readFileSync(join(b, 'certs/m.example/cert.pem'), 'utf8')));
  assert.equal(statSync(join(b, 'certs/m.example/privkey.pem')).mode & 0o777, 0o600);

  // --force copies over a store that holds something, and leaves alone what only it holds.
  rmSync(join(b, 'claims.json'));
  writeFileSync(join(b, 'certs/m.example/status.json'), '{"lastError":"changed"}\n');
  const lines: string[] = [];
  const print = console.log;
  console.log = (l: string) => void lines.push(l);
  try {
    assert.equal(await migrateCommand(config, log, { from: 'files', to: 'redis', force: true }, redisEnv('m1:', { STORE_ENCRYPTION_KEY: KEY })), 0);
  } finally {
    console.log = print;
  }
  assert.match(lines.join('\n'), /copied 8 files .*\nleft alone in Redis .*: 1 paths the source does not have \(claims\.json\)/);
  assert.equal(server.cli('HGET', 'm1:store:file:certs/m.example/status.json', 'data'), '{"lastError":"changed"}\n\n');
  assert.equal(server.cli('HGET', 'm1:store:file:claims.json', 'data'), '{"version":1}\n\n');

  // Without the key, the copy back is refused before anything is written, and says why.
  const c = join(base, 'c');
  await assert.rejects(migrateCommand(loadConfig({ DATA_DIR: c }), log, { from: 'redis', to: 'files', force: false }, redisEnv('m1:')), /encrypted 2 with the key whose id is \w+, and STORE_ENCRYPTION_KEY is not set/);
  assert.deepEqual(filesUnder(c).filter((f) => !f.includes('manager.lock')), []);
});
