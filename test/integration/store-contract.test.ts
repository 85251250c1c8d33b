/**
 * The store contract (issue 20 item 1): the same cases against STORE=files and STORE=redis, the latter on a real
 * redis-server. Then what only Redis has: private keys encrypted at rest, refused without their key, and the lease
 * with its fencing token, with real processes paused and killed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockBusyError, type HeldLock } from '../../src/lock.js';
import { createLogger } from '../../src/log.js';
import { FilesStore } from '../../src/stores/files/files-store.js';
import { redis as redisEntry } from '../../src/stores/redis/entry.js';
import { encryptionKeyFromEnv, refuseEncryptionKeyWithFiles } from '../../src/stores/redis/encryption.js';
import { LeaseLostError, RedisStore } from '../../src/stores/redis/redis-store.js';
import { WRITE } from '../../src/stores/redis/scripts.js';
import { StoreUnavailableError, type Store } from '../../src/stores/store.js';
import { LocalStore } from '../../src/certs/store.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const base = mkdtempSync(join(tmpdir(), 'cw-store-'));
let server: RedisServer;
const opened: { store: Store; lock?: HeldLock }[] = [];
before(async () => {
  server = await startRedis(join(base, 'redis'));
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const o of opened) {
    await o.lock?.release();
    await o.store.close();
  }
  await server.stop();
  rmSync(base, { recursive: true, force: true });
});

let seq = 0;
const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('hex');
const pem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function redisEnv(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return { STORE: 'redis', REDIS_URL: server.url, REDIS_PREFIX: prefix, LEASE_TTL: '15s', ...extra };
}

/** A store as the manager gets it: initialised, with the lock held. */
async function redisStore(prefix: string, extra: Record<string, string> = {}, lock = true): Promise<RedisStore> {
  const store = redisEntry.create(redisEntry.fromEnv(redisEnv(prefix, extra)), { log: createLogger('silent') }) as RedisStore;
  const o: { store: Store; lock?: HeldLock } = { store };
  opened.push(o);
  await store.init();
  if (lock) o.lock = await store.lock({ waitMs: 0 });
  return store;
}

const FACTORIES: { name: string; make(): Promise<{ store: Store; env: Record<string, string> }> }[] = [
  {
    name: 'files',
    async make() {
      const dir = join(base, `files-${++seq}`);
      const store = new FilesStore(dir);
      await store.init();
      opened.push({ store, lock: await store.lock({ waitMs: 0 }) });
      return { store, env: { STORE: 'files', DATA_DIR: dir } };
    },
  },
  {
    name: 'redis',
    async make() {
      const prefix = `contract${++seq}:`;
      return { store: await redisStore(prefix, { STORE_ENCRYPTION_KEY: KEY_A }), env: redisEnv(prefix, { STORE_ENCRYPTION_KEY: KEY_A }) };
    },
  },
];

const children: ChildProcessWithoutNullStreams[] = [];

/** Starts test/support/store-child.ts; next(match) waits for the first line after the last one matched. */
function child(env: Record<string, string>, args: string[]): { p: ChildProcessWithoutNullStreams; lines: string[]; next(match: RegExp): Promise<string> } {
  const p = spawn(process.execPath, ['--import', 'tsx', 'test/support/store-child.ts', ...args], { env: { ...process.env, ...env }, stdio: 'pipe' });
  children.push(p);
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  let pos = 0;
  let waiter: (() => void) | undefined;
  p.stderr.on('data', (b: Buffer) => (stderr += b));
  p.stdout.on('data', (b: Buffer) => {
    buf += b;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    waiter?.();
  });
  const next = (match: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const look = () => {
        const i = lines.findIndex((l, j) => j >= pos && match.test(l));
        if (i < 0) return false;
        pos = i + 1;
        waiter = undefined;
        resolve(lines[i]!);
        return true;
      };
      if (look()) return;
      waiter = look;
      const fail = (why: string) => reject(new Error(`store child ${why} before printing ${match}: ${lines.join(' | ')} ${stderr}`));
      p.once('exit', (code, sig) => fail(`exited (${code ?? sig})`));
      // Not a timing assertion: a bound so that a child that never answers fails the test instead of hanging it.
      setTimeout(() => fail('was silent for 60 s'), 60_000).unref();
    });
  return { p, lines, next };
}

for (const f of FACTORIES) {
  test(`${f.name}: an absent path reads as undefined, lists as empty and has no stamp`, async () => {
    const { store } = await f.make();
    assert.equal(await store.read('certs/nothing/cert.pem'), undefined);
    assert.deepEqual(await store.list('certs/nothing'), []);
    assert.equal(await store.stamp('certs/nothing/cert.pem'), undefined);
    await store.remove('certs/nothing'); // absent is not an error
  });

  test(`${f.name}: a write reads back, an overwrite replaces it whole, and the stamp changes on each write and not otherwise`, async () => {
    const { store } = await f.make();
    await store.write('rancher-reloads.json', '{"a":1}\n');
    assert.equal(await store.read('rancher-reloads.json'), '{"a":1}\n');
    const s1 = await store.stamp('rancher-reloads.json');
    assert.ok(s1);
    await store.read('rancher-reloads.json');
    await store.write('claims.json', '{}\n'); // another path's write
    assert.equal(await store.stamp('rancher-reloads.json'), s1, 'a read or another path\'s write leaves the stamp');
    await store.write('rancher-reloads.json', '{"a":1}\n'); // the same text again: still a write
    const s2 = await store.stamp('rancher-reloads.json');
    assert.notEqual(s2, s1);
    await store.write('rancher-reloads.json', '{"a":2}\n');
    assert.equal(await store.read('rancher-reloads.json'), '{"a":2}\n');
    assert.notEqual(await store.stamp('rancher-reloads.json'), s2);
    await store.remove('rancher-reloads.json');
    await store.write('rancher-reloads.json', '{"a":1}\n');
    assert.ok(![s1, s2].includes(await store.stamp('rancher-reloads.json')), 'removed and written again: a stamp it never had');
  });

  test(`${f.name}: a folder's stamp moves with every write, removal or move of a file in it, and not with reads or another folder's writes; stamps() answers as stamp() does`, async () => {
    const { store } = await f.make();
    assert.equal(store.folderStamps, true);
    const dir = 'certs/f.example';
    assert.equal(await store.stamp(dir), undefined, 'no folder: no stamp');
    await store.writeSet(dir, [{ name: 'cert.pem', data: 'C1' }, { name: 'meta.json', data: '{}' }]);
    const seen: string[] = [];
    const moved = async (why: string) => {
      const s = await store.stamp(dir);
      assert.ok(s !== undefined && !seen.includes(s), `${why}: the folder's stamp moves to one it never had (${s})`);
      seen.push(s);
    };
    await moved('a set written');
    await store.read(`${dir}/cert.pem`);
    await store.write('certs/other.example/cert.pem', 'O');
    await store.write('top.json', '{}');
    assert.equal(await store.stamp(dir), seen.at(-1), 'a read, or a write elsewhere, leaves it');
    await store.write(`${dir}/status.json`, '{}');
    await moved('a file added');
    await store.write(`${dir}/status.json`, '{}');
    await moved('the same text written again');
    await store.writeSet(dir, [{ name: 'cert.pem', data: 'C2' }]);
    await moved('a set replaced');
    await store.remove(`${dir}/status.json`);
    await moved('a file removed');
    await store.write('certs/other.example/issued.json', 'I');
    await store.move('certs/other.example/issued.json', `${dir}/issued.json`);
    await moved('a file moved in');
    await store.move(`${dir}/issued.json`, 'certs/other.example/issued.json');
    await moved('a file moved out');
    const paths = [dir, `${dir}/cert.pem`, 'certs/none.example', `${dir}/none.json`, 'certs/other.example', 'top.json'];
    assert.deepEqual(await store.stamps!(paths), await Promise.all(paths.map((p) => store.stamp(p))));
    await store.remove(dir);
    assert.equal(await store.stamp(dir), undefined, 'removed: no stamp');
    await store.writeSet(dir, [{ name: 'cert.pem', data: 'C1' }, { name: 'meta.json', data: '{}' }]);
    await moved('removed and written again');
    await store.move(dir, 'archive/f.example');
    assert.equal(await store.stamp(dir), undefined, 'moved away: no stamp');
    await store.move('archive/f.example', dir);
    await moved('moved back');
  });

  test(`${f.name}: writeSet writes a certificate's files together, list names them, and a second set replaces them, leaving the folder's other files`, async () => {
    const { store } = await f.make();
    await store.write('certs/a.example/status.json', '{"ok":true}\n');
    const key1 = pem();
    await store.writeSet('certs/a.example', [
      { name: 'privkey.pem', data: key1, secret: true },
      { name: 'cert.pem', data: 'CERT 1\n', mode: 0o644 },
      { name: 'chain.pem', data: 'CHAIN 1\n', mode: 0o644 },
    ]);
    await store.write('certs/b.example/cert.pem', 'B\n');
    assert.deepEqual((await store.list('certs')).sort(), ['a.example', 'b.example']);
    assert.deepEqual((await store.list('certs/a.example')).sort(), ['cert.pem', 'chain.pem', 'privkey.pem', 'status.json']);
    assert.ok((await store.list('')).includes('certs'), "'' lists the top");
    assert.equal(await store.read('certs/a.example/privkey.pem'), key1);
    const key2 = pem();
    await store.writeSet('certs/a.example', [
      { name: 'privkey.pem', data: key2, secret: true },
      { name: 'cert.pem', data: 'CERT 2\n' },
      { name: 'chain.pem', data: 'CHAIN 2\n' },
    ]);
    assert.deepEqual(
      await Promise.all(['privkey.pem', 'cert.pem', 'chain.pem', 'status.json'].map((n) => store.read(`certs/a.example/${n}`))),
      [key2, 'CERT 2\n', 'CHAIN 2\n', '{"ok":true}\n'],
    );
  });

  test(`${f.name}: a writer SIGKILLed in the middle of replacing a set leaves the old set or the new one, never a mix`, async () => {
    const { store, env } = await f.make();
    await opened.find((o) => o.store === store)!.lock!.release(); // the child writes: it takes the lock
    for (let round = 0; round < 1; round++) {
      const c = child(env, ['churn', 'certs/churn.example']);
      await c.next(/^ready$/);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      c.p.kill('SIGKILL');
      await new Promise((r) => c.p.once('exit', r));
      if (env.STORE === 'redis') server.cli('DEL', `${env.REDIS_PREFIX}lease`); // the dead writer's lease, without waiting out its TTL
      await store.recover('certs/churn.example');
      assert.deepEqual((await store.list('certs/churn.example')).sort(), ['cert.pem', 'chain.pem', 'privkey.pem'], `round ${round}: only the set's files`);
      const rounds = await Promise.all(['privkey.pem', 'cert.pem', 'chain.pem'].map(async (n) => /round (\d+)/.exec((await store.read(`certs/churn.example/${n}`)) ?? '')?.[1]));
      assert.ok(rounds[0] !== undefined && rounds.every((r) => r === rounds[0]), `round ${round}: the three files are of one set: ${rounds.join(', ')}`);
    }
  });

  test(`${f.name}: removing a folder removes all it holds, and leaves its neighbours`, async () => {
    const { store } = await f.make();
    await store.writeSet('certs/gone.example', [{ name: 'cert.pem', data: 'x' }, { name: 'meta.json', data: '{}' }]);
    await store.write('certs/gone.example/ari/state.json', '{}');
    await store.write('certs/kept.example/cert.pem', 'kept');
    await store.remove('certs/gone.example');
    assert.equal(await store.read('certs/gone.example/cert.pem'), undefined);
    assert.equal(await store.read('certs/gone.example/ari/state.json'), undefined);
    assert.deepEqual(await store.list('certs/gone.example'), []);
    assert.deepEqual(await store.list('certs'), ['kept.example']);
    assert.equal(await store.read('certs/kept.example/cert.pem'), 'kept');
  });

  test(`${f.name}: moving a folder moves all it holds, whole; a file moves over a file`, async () => {
    const { store } = await f.make();
    const key = pem();
    await store.writeSet('certs/old.example', [{ name: 'privkey.pem', data: key, secret: true }, { name: 'cert.pem', data: 'C' }]);
    await store.write('certs/old.example/sub/x.json', 'X');
    await store.write('certs/stays.example/cert.pem', 'S');
    await store.move('certs/old.example', 'archive/old.example-2026');
    assert.deepEqual(await store.list('certs'), ['stays.example']);
    assert.deepEqual(await store.list('archive'), ['old.example-2026']);
    assert.deepEqual((await store.list('archive/old.example-2026')).sort(), ['cert.pem', 'privkey.pem', 'sub']);
    assert.equal(await store.read('archive/old.example-2026/privkey.pem'), key);
    assert.equal(await store.read('archive/old.example-2026/sub/x.json'), 'X');
    assert.equal(await store.read('certs/old.example/cert.pem'), undefined);
    await store.write('certs/stays.example/issued.json', 'new');
    await store.move('certs/stays.example/issued.json', 'certs/stays.example/cert.pem');
    assert.equal(await store.read('certs/stays.example/cert.pem'), 'new');
    assert.deepEqual(await store.list('certs/stays.example'), ['cert.pem']);
    await assert.rejects(store.move('certs/none.example', 'archive/none'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  });

  test(`${f.name}: a path that is not relative and '/'-separated is refused, naming it`, async () => {
    const { store } = await f.make();
    for (const bad of ['../etc/passwd', '/etc/passwd', 'certs//a', 'certs/./a', 'certs/a/..', '']) {
      await assert.rejects(store.write(bad, 'x'), new RegExp(`"${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" is not a store path`), bad);
      await assert.rejects(store.read(bad), /is not a store path/, bad);
    }
    await assert.rejects(store.writeSet('certs/a', [{ name: 'x/y', data: '' }]), /x\/y/);
  });
}

test('redis: the stamps of 2,500 certificate folders are three MGETs and nothing else; a folder written before generations existed still has a stamp, until its next write gives it one', async () => {
  const store = await redisStore('gen1:');
  const dirs = Array.from({ length: 2500 }, (_, i) => `certs/g${i}.example`);
  await Promise.all(dirs.map((d) => store.writeSet(d, [{ name: 'cert.pem', data: d }, { name: 'meta.json', data: '{}' }])));
  const calls = () => Object.fromEntries([...server.cli('INFO', 'commandstats').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  const before = calls();
  const stamps = await store.stamps(dirs);
  const after = calls();
  const sent = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0) - (k === 'info' ? 1 : 0)]).filter(([, v]) => (v as number) > 0));
  assert.deepEqual(sent, { mget: 3 });
  assert.equal(new Set(stamps).size, 2500, 'each folder its own generation');
  assert.ok(stamps.every((s) => s !== undefined));
  // As a store written by an earlier version holds it: no generation.
  server.cli('DEL', 'gen1:store:dgen:certs/g7.example');
  const old = await store.stamp('certs/g7.example');
  assert.ok(old !== undefined && old !== stamps[7], `a stamp from its files (${old})`);
  assert.deepEqual(await store.stamps(['certs/g7.example', 'certs/g8.example']), [old, stamps[8]]);
  server.cli('HSET', 'gen1:store:file:certs/g7.example/cert.pem', 'gen', '999999');
  assert.notEqual(await store.stamp('certs/g7.example'), old, 'it moves with its files');
  await store.write('certs/g7.example/status.json', '{}');
  assert.match(server.cli('GET', 'gen1:store:dgen:certs/g7.example').trim(), /^\d+$/, 'the next write gives it a generation');
});

test('redis: a private key is encrypted at rest (redis-cli finds no PEM), and reads back whole', async () => {
  const store = await redisStore('enc1:', { STORE_ENCRYPTION_KEY: KEY_A });
  const key = pem();
  await store.writeSet('certs/s.example', [{ name: 'privkey.pem', data: key, secret: true }, { name: 'cert.pem', data: 'CERT' }]);
  await store.write('accounts/acme/account.key', key, { secret: true });
  for (const p of ['certs/s.example/privkey.pem', 'accounts/acme/account.key']) {
    const raw = server.cli('HGET', `enc1:store:file:${p}`, 'data');
    assert.doesNotMatch(raw, /PRIVATE KEY|MII/, `${p} at rest`);
    assert.match(raw, new RegExp(`^enc:v1:${encryptionKeyFromEnv({ STORE_ENCRYPTION_KEY: KEY_A })!.id}:`), `${p} names its key id`);
    assert.equal(await store.read(p), key);
  }
  assert.equal(server.cli('HGET', 'enc1:store:file:certs/s.example/cert.pem', 'data').trim(), 'CERT', 'what is not secret stays readable');
  // Without STORE_ENCRYPTION_KEY, secrets are plain (and init says so); with it, the dump holds no key either.
  assert.doesNotMatch(server.cli('--scan', '--pattern', 'enc1:*'), /PRIVATE/);
});

test('redis: an encrypted store refuses to start without its key or with another key, saying which', async () => {
  const store = await redisStore('enc2:', { STORE_ENCRYPTION_KEY: KEY_A });
  await store.write('certs/k.example/privkey.pem', pem(), { secret: true });
  const id = encryptionKeyFromEnv({ STORE_ENCRYPTION_KEY: KEY_A })!.id;
  const none = redisEntry.create(redisEntry.fromEnv(redisEnv('enc2:')), { log: createLogger('silent') });
  opened.push({ store: none });
  await assert.rejects(none.init(), new RegExp(`encrypted 1 with the key whose id is ${id}, and STORE_ENCRYPTION_KEY is not set: certwrangler refuses to start`));
  await assert.rejects(none.read('certs/k.example/privkey.pem'), /STORE_ENCRYPTION_KEY is not set/);
  const other = redisEntry.create(redisEntry.fromEnv(redisEnv('enc2:', { STORE_ENCRYPTION_KEY: KEY_B })), { log: createLogger('silent') });
  opened.push({ store: other });
  await assert.rejects(other.init(), new RegExp(`id is ${id}, but STORE_ENCRYPTION_KEY is another key \\(id ${encryptionKeyFromEnv({ STORE_ENCRYPTION_KEY: KEY_B })!.id}\\)`));
  await assert.rejects(other.read('certs/k.example/privkey.pem'), /another key/);
  // A tampered value is named as such, never returned.
  const raw = server.cli('HGET', 'enc2:store:file:certs/k.example/privkey.pem', 'data').trim();
  server.cli('HSET', 'enc2:store:file:certs/k.example/privkey.pem', 'data', raw.slice(0, -4) + (raw.endsWith('AAAA') ? 'BBBB' : 'AAAA'));
  await assert.rejects(store.read('certs/k.example/privkey.pem'), /fails its integrity check/);
  // Once the secret is gone, the store opens without a key again.
  await store.remove('certs/k.example');
  await none.init();
});

test('config: STORE_ENCRYPTION_KEY must be 32 bytes, and is refused with STORE=files', () => {
  assert.throws(() => encryptionKeyFromEnv({ STORE_ENCRYPTION_KEY: 'c2hvcnQ=' }), /STORE_ENCRYPTION_KEY=\(hidden\) is not valid; accepted: 32 random bytes/);
  assert.throws(() => refuseEncryptionKeyWithFiles({ STORE_ENCRYPTION_KEY: KEY_A }), /unset with STORE=files/);
  assert.throws(() => redisEntry.fromEnv({ REDIS_URL: server.url, LEASE_TTL: '10ms' }), /LEASE_TTL/);
  assert.deepEqual([...redisEntry.secrets].sort(), ['REDIS_URL', 'STORE_ENCRYPTION_KEY']);
});

test('redis: a second manager cannot take a held lease; once it has, the first one\'s writes, sets, moves and removals are refused and change nothing', async () => {
  const first = await redisStore('fence1:');
  await first.write('certs/f.example/cert.pem', 'FIRST');
  const second = await redisStore('fence1:', {}, false);
  await assert.rejects(second.lock({ waitMs: 0 }), (e: Error) => e instanceof LockBusyError && e.message.includes(`holds the lease: ${hostname()} (pid ${process.pid}`));
  // The first manager's lease lapses (it was paused, or cut off from Redis) and the second takes it.
  server.cli('DEL', 'fence1:lease');
  const held = await second.lock({ waitMs: 0 });
  opened.push({ store: second, lock: held });
  const before = server.cli('HGETALL', 'fence1:store:file:certs/f.example/cert.pem');
  const refused = (e: Error) => e instanceof LeaseLostError && e.message.includes(`the lease was lost to ${hostname()} (pid ${process.pid}, fencing token ${held.owner.token}`);
  await assert.rejects(first.write('certs/f.example/cert.pem', 'STALE'), refused);
  await assert.rejects(first.writeSet('certs/f.example', [{ name: 'cert.pem', data: 'STALE' }]), refused);
  await assert.rejects(first.move('certs/f.example', 'archive/f'), refused);
  await assert.rejects(first.remove('certs/f.example'), refused);
  assert.equal(server.cli('HGETALL', 'fence1:store:file:certs/f.example/cert.pem'), before, 'nothing changed');
  assert.deepEqual(await second.list('certs'), ['f.example']);
  await second.write('certs/f.example/cert.pem', 'SECOND');
  assert.equal(await first.read('certs/f.example/cert.pem'), 'SECOND');
  // A store that never took the lease does not write at all.
  const none = await redisStore('fence1:', {}, false);
  await assert.rejects(none.write('x.json', '{}'), /holds no lease/);
});

test('redis lease: one leader, two standbys naming it; the leader paused (SIGSTOP) past its lease is replaced, and on SIGCONT it has lost it and its write is refused; the new leader SIGKILLed is replaced too', async () => {
  const env = redisEnv('lease1:', { LEASE_TTL: '1s' });
  const a = child(env, ['lease']);
  await a.next(/^leader /);
  const standbys = [child(env, ['lease']), child(env, ['lease'])];
  for (const s of standbys) assert.match(await s.next(/^standby /), new RegExp(`^standby ${hostname()} \\(pid ${a.p.pid}, fencing token \\d+`), 'a standby names the leader');
  a.p.stdin.write('write certs/l.example/cert.pem FROM-A\n');
  await a.next(/^wrote$/);
  a.p.kill('SIGSTOP');
  const b = await Promise.race(standbys.map((s) => s.next(/^leader /).then(() => s)));
  const c = standbys.find((s) => s !== b)!;
  assert.match(await c.next(/^standby /), new RegExp(`^standby ${hostname()} \\(pid ${b.p.pid},`), 'the other standby names the new leader');
  assert.ok(!c.lines.some((l) => l.startsWith('leader')), 'one leader at a time');
  b.p.stdin.write('write certs/l.example/cert.pem FROM-B\n');
  await b.next(/^wrote$/);
  a.p.kill('SIGCONT');
  a.p.stdin.write('write certs/l.example/cert.pem FROM-A-AFTER\n');
  const answer = await a.next(/^(wrote|refused)/);
  assert.match(answer, new RegExp(`^refused .*the lease was lost to ${hostname()} \\(pid ${b.p.pid}`), 'the fencing token refuses the old leader');
  if (!a.lines.some((l) => l.startsWith('lost '))) await a.next(/^lost /); // and it is told, so that the manager stops
  assert.equal(server.cli('HGET', 'lease1:store:file:certs/l.example/cert.pem', 'data').trim(), 'FROM-B');
  // The new leader SIGKILLed: the last standby takes over once the lease lapses.
  b.p.kill('SIGKILL');
  await c.next(/^leader /);
  c.p.stdin.write('write certs/l.example/cert.pem FROM-C\n');
  await c.next(/^wrote$/);
});

test('redis lease: a standby outlives a Redis outage longer than REDIS_TIMEOUT, says so once, and takes over from a leader that died meanwhile', async () => {
  const env = redisEnv('outage1:', { LEASE_TTL: '1s', REDIS_TIMEOUT: '200ms' });
  const a = child(env, ['lease']);
  await a.next(/^leader /);
  const b = child(env, ['lease']);
  await b.next(/^standby /);
  await server.stop();
  try {
    assert.match(await b.next(/^unreachable /), /^unreachable 333\.3+\d* \S/, 'the standby says its store is out of reach, and how often it looks again');
    a.p.kill('SIGKILL'); // the leader dies while Redis is down
    // Several REDIS_TIMEOUTs and retries pass: the standby is still there, and said it once.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(b.p.exitCode, null, `the standby stays up: ${b.lines.join(' | ')}`);
    assert.equal(b.lines.filter((l) => l.startsWith('unreachable ')).length, 1, 'told once per outage');
  } finally {
    await server.start();
  }
  // The dead leader's lease lapses (1 s): the standby takes it and writes.
  await b.next(/^leader /);
  b.p.stdin.write('write certs/o.example/cert.pem FROM-B\n');
  await b.next(/^wrote$/);
  assert.equal(server.cli('HGET', 'outage1:store:file:certs/o.example/cert.pem', 'data').trim(), 'FROM-B');
});

test('redis: restarted (its append-only file kept), the store reads what it held, and the lease holder writes on with the same token', async () => {
  const store = await redisStore('restart1:', { STORE_ENCRYPTION_KEY: KEY_A });
  const key = pem();
  await store.writeSet('certs/r.example', [{ name: 'privkey.pem', data: key, secret: true }, { name: 'cert.pem', data: 'CERT' }]);
  const stamp = await store.stamp('certs/r.example/cert.pem');
  await server.restart();
  // Redis forgot its scripts: the write falls back from EVALSHA to EVAL.
  const sha = createHash('sha1').update(WRITE).digest('hex');
  assert.equal(server.cli('SCRIPT', 'EXISTS', sha).trim(), '0');
  assert.equal(await store.read('certs/r.example/privkey.pem'), key);
  assert.equal(await store.stamp('certs/r.example/cert.pem'), stamp);
  assert.deepEqual(await store.list('certs/r.example'), ['cert.pem', 'privkey.pem']);
  await store.write('certs/r.example/status.json', '{}');
  assert.equal(await store.read('certs/r.example/status.json'), '{}');
  assert.equal(server.cli('SCRIPT', 'EXISTS', sha).trim(), '1');
});

test('redis lease: lapsed while out of reach and taken by no one, it is renewed with the same token; held and let go by another meanwhile, it is lost', async () => {
  const store = redisEntry.create(redisEntry.fromEnv(redisEnv('lapse1:', { LEASE_TTL: '1s' })), { log: createLogger('silent') }) as RedisStore;
  opened.push({ store });
  await store.init();
  const lost: string[] = [];
  const held = await store.lock({ waitMs: 0, onLost: (why) => lost.push(why) });
  opened.push({ store, lock: held });
  const mine = server.cli('GET', 'lapse1:lease').trim();
  server.cli('DEL', 'lapse1:lease'); // lapsed: no one took it
  while (server.cli('GET', 'lapse1:lease').trim() !== mine) await new Promise((r) => setTimeout(r, 50));
  await store.write('a.json', '1');
  assert.deepEqual(lost, []);
  // Another manager took it (the counter moved) and let it go: what it wrote is not what this one remembers.
  server.cli('DEL', 'lapse1:lease');
  server.cli('INCR', 'lapse1:lease:fence');
  while (lost.length === 0) await new Promise((r) => setTimeout(r, 50));
  assert.match(lost[0]!, /is now held by no one \(it lapsed, and another manager may have held it since\)/);
  await assert.rejects(store.write('a.json', '2'), LeaseLostError);
  assert.equal(await store.read('a.json'), '1');
});

test('redis: unreachable, a certificate reads as "store unavailable" (the pass stops), never as absent or unreadable, which would order it again; back, it reads whole', async () => {
  const store = await redisStore('down1:', { REDIS_TIMEOUT: '300ms' });
  const ss = await createSelfSigned(['down.example']);
  const certs = new LocalStore(store);
  await certs.write({ name: 'down.example', names: ['down.example'], key: ss.key, cert: ss.cert, chain: '', kind: 'production', directoryUrl: 'https://ca.example/dir' });
  await server.stop();
  try {
    await assert.rejects(certs.read('down.example'), (e: Error) => e instanceof StoreUnavailableError && /cannot be reached for certs\/down\.example\/.*the pass stops here/.test(e.message));
    await assert.rejects(store.write('x.json', '{}'), StoreUnavailableError);
  } finally {
    await server.start();
  }
  // The client reconnects with its backoff: a read may still find it reconnecting, and says so the same way.
  let back;
  for (let i = 0; back === undefined; i++) back = await certs.read('down.example').catch((e: Error) => (e instanceof StoreUnavailableError && i < 100 ? undefined : Promise.reject(e)));
  assert.ok(back.state === 'present' && back.keyMatches, JSON.stringify(back).slice(0, 300));
});
