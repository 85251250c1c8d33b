/**
 * Issue 23 (mutation run of src/acme/http01.ts): the solver with STORE=redis, against a real redis-server. Each
 * token is written to the folder and published to Redis with its TTL; clean-up removes both, and withdraws only a
 * token this manager published (another manager's key for the same token stays); at shutdown every token still
 * out is removed, even with Redis gone; a solver without Redis closes as a no-op.
 */
import { test, before, after } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHALLENGE_PATH, WebrootSolver } from '../../src/acme/http01.js';
import { RedisTokenPublisher, TOKEN_TTL_MS } from '../../src/webroot/token-source.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let redis: RedisServer;
const PREFIX = 'cw-h01m:';
const key = (token: string) => `${PREFIX}token:${token}`;
const get = (token: string) => redis.cli('GET', key(token)).replace(/\n$/, '');
const solverOn = () => {
  const webroot = mkdtempSync(join(tmpdir(), 'cw-h01m-'));
  const solver = new WebrootSolver(webroot, new RedisTokenPublisher({ url: redis.url, sentinels: [], prefix: PREFIX, timeoutMs: 2000, shown: redis.url }));
  return { solver, file: (token: string) => join(webroot, CHALLENGE_PATH, token) };
};

before(async () => {
  redis = await startRedis(mkdtempSync(join(tmpdir(), 'cw-h01m-redis-')));
  // A failing test file is ended at once by the mutation run (forceBail), before after(): Redis goes with it.
  process.once('exit', () => void spawnSync('redis-cli', ['-p', String(redis.port), 'SHUTDOWN', 'NOSAVE'], { timeout: 5000 }));
});
after(() => redis.stop());

test('http-01 with Redis: a token is written and published with its TTL; clean-up removes both', async () => {
  const { solver, file } = solverOn();
  try {
    await solver.present('a.example.com', 'pub_Token-1', 'pub.keyauth');
    assert.ok(existsSync(file('pub_Token-1')));
    assert.equal(get('pub_Token-1'), 'pub.keyauth');
    const ttl = Number(redis.cli('PTTL', key('pub_Token-1')));
    assert.ok(ttl > TOKEN_TTL_MS - 60_000 && ttl <= TOKEN_TTL_MS, `PTTL ${ttl}`);
    await solver.cleanup('a.example.com', 'pub_Token-1');
    assert.equal(existsSync(file('pub_Token-1')), false);
    assert.equal(get('pub_Token-1'), '');
  } finally {
    await solver.close();
  }
});

test('http-01 with Redis: clean-up withdraws only a token this manager published, once', async () => {
  const { solver } = solverOn();
  try {
    // Another manager's key for the same token (it is ordering the same name): never ours to remove.
    redis.cli('SET', key('other_Token'), 'theirs');
    await solver.cleanup('a.example.com', 'other_Token');
    assert.equal(get('other_Token'), 'theirs');
    await solver.present('a.example.com', 'once_Token', 'ours');
    await solver.cleanup('a.example.com', 'once_Token');
    redis.cli('SET', key('once_Token'), 'theirs now');
    await solver.cleanup('a.example.com', 'once_Token');
    assert.equal(get('once_Token'), 'theirs now', 'withdrawn once; a second clean-up leaves the key alone');
  } finally {
    await solver.close();
  }
});

test('http-01 with Redis: at shutdown every token still out is removed from the folder and from Redis; with Redis gone, the files still are', async () => {
  const { solver, file } = solverOn();
  try {
    for (const t of ['left_Token-1', 'left_Token-2']) await solver.present('a.example.com', t, `${t}.keyauth`);
    await solver.cleanupAll();
    for (const t of ['left_Token-1', 'left_Token-2']) {
      assert.equal(existsSync(file(t)), false, t);
      assert.equal(get(t), '', t);
    }
    redis.cli('SET', key('left_Token-1'), 'theirs');
    await solver.cleanupAll();
    assert.equal(get('left_Token-1'), 'theirs', 'nothing left to withdraw');
  } finally {
    await solver.close();
  }
  const { solver: down, file: downFile } = solverOn();
  try {
    await down.present('a.example.com', 'down_Token', 'down.keyauth');
    await redis.stop();
    await down.cleanupAll();
    assert.equal(existsSync(downFile('down_Token')), false);
  } finally {
    await down.close();
    await redis.start();
  }
});

test('http-01 with Redis: a token Redis does not take fails present(), naming Redis, and is not withdrawn later', async () => {
  const { solver, file } = solverOn();
  try {
    await redis.stop();
    await assert.rejects(solver.present('a.example.com', 'fail_Token', 'x'), /cannot publish the token to Redis/);
    await redis.start();
    redis.cli('SET', key('fail_Token'), 'theirs');
    await solver.cleanup('a.example.com', 'fail_Token');
    assert.equal(get('fail_Token'), 'theirs');
    assert.equal(existsSync(file('fail_Token')), false);
  } finally {
    await solver.close();
  }
});

test('http-01 without Redis: close() does nothing and does not fail', async () => {
  await new WebrootSolver(mkdtempSync(join(tmpdir(), 'cw-h01m-'))).close();
});

test('http-01: a challenge folder not ours to chmod (EPERM) is used as its owner set it', { skip: process.getuid?.() !== 0 && 'needs root to act as another user' }, async () => {
  // As http01-shared, but in this process (its effective uid set to 65534 for the call), so the mutation run sees it.
  const webroot = mkdtempSync(join(tmpdir(), 'cw-h01m-'));
  chmodSync(webroot, 0o755);
  mkdirSync(join(webroot, '.well-known'), { mode: 0o755 });
  chmodSync(join(webroot, '.well-known'), 0o755);
  const dir = join(webroot, CHALLENGE_PATH);
  mkdirSync(dir);
  chmodSync(dir, 0o707); // others may write; the solver would open it to 0755, and may not
  const solver = new WebrootSolver(webroot);
  process.setegid!(65534);
  process.seteuid!(65534);
  try {
    await solver.present('a.example.com', 'eperm_Token', 'eperm.keyauth');
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
  }
  assert.equal(readFileSync(join(dir, 'eperm_Token'), 'utf8'), 'eperm.keyauth');
  assert.equal(statSync(dir).mode & 0o777, 0o707, 'its owner\'s mode is kept');
});
