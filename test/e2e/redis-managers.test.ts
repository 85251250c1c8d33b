/**
 * Two managers on one Redis (STORE=redis, issue 20 items 2 and 6): real processes, a real redis-server, Pebble.
 * The first to start leads and issues; the second stands by, saying "standby, leader is <host>" on /readyz, the
 * page and the metrics. The leader paused past its lease (SIGSTOP) is replaced: the standby takes over and finds
 * every certificate in the store (no order), and the old leader, resumed (SIGCONT), has lost the lease and exits.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyMatchesCert } from '../../src/certs/parse.js';
import { createLogger } from '../../src/log.js';
import { redis } from '../../src/stores/redis/entry.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, pebbleEnv, startCli, type CliRun } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const base = mkdtempSync(join(tmpdir(), 'cw-redis-ha-'));
const lab = acmeLab(base);
let ca: Pebble;
let server: RedisServer;
const runs: CliRun[] = [];
before(async () => {
  [ca, server] = await Promise.all([lab.pebble('pebble'), startRedis(join(base, 'redis'))]);
});
after(async () => {
  for (const r of runs) r.proc.kill('SIGKILL');
  await Promise.all([lab.stop(), server.stop()]);
});

const KEY = randomBytes(32).toString('base64');
const NAMES = ['a.ha.example.com', 'b.ha.example.com', 'c.ha.example.com'];
const TOKEN = randomBytes(16).toString('hex');

async function managerEnv(who: string): Promise<Record<string, string>> {
  return {
    STORE: 'redis',
    REDIS_URL: server.url,
    REDIS_PREFIX: 'ha:',
    STORE_ENCRYPTION_KEY: KEY,
    LEASE_TTL: '2s',
    DATA_DIR: join(base, who, 'data'),
    CERTS_DIR: join(base, who, 'live'),
    WEBROOT_DIR: lab.webroot,
    STATUS_ADDR: `127.0.0.1:${await freePort()}`,
    STATUS_TOKEN: TOKEN,
    LOG_LEVEL: 'info',
    DOMAINS: NAMES.join(';'),
    ...pebbleEnv(ca, 'production'),
  };
}

/** Not a timing assertion: a bound so that a manager that never gets there fails the test instead of hanging it. */
async function waitFor<T>(what: string, run: CliRun, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until || run.proc.exitCode !== null) throw new Error(`${what}: not seen (exit ${run.proc.exitCode}): ${run.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const readyz = async (env: Record<string, string>) => {
  const r = await fetch(`http://${env.STATUS_ADDR}/readyz`);
  return { status: r.status, text: await r.text() };
};

/** Log lines that record an order placed with the CA. */
const ordersIn = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { action?: string })
    .filter((l) => l.action === 'order').length;

test('two managers on one Redis: one leads, the other stands by naming it; the leader paused past its lease is replaced with no new order, and on SIGCONT it has lost the lease and exits; Redis down at the start of a pass and back during it: nothing is lost or ordered', async () => {
  const envA = await managerEnv('a');
  const envB = await managerEnv('b');
  const a = startCli(['manager'], envA);
  runs.push(a);
  await waitFor('A ready after its first pass', a, async () => ((await readyz(envA)).status === 200 ? true : undefined));
  assert.equal((await readyz(envA)).text, 'ready (leader)\n');
  assert.match(await (await fetch(`http://${envA.STATUS_ADDR}/metrics`)).text(), /^certwrangler_manager_role\{role="leader"\} 1$/m);
  assert.equal(ordersIn(a.output()), NAMES.length, a.output());

  const b = startCli(['manager'], envB);
  runs.push(b);
  const standby = await waitFor('B standing by', b, async () => {
    const r = await readyz(envB);
    return r.status === 503 && r.text.startsWith('standby') ? r.text : undefined;
  });
  assert.match(standby, new RegExp(`^standby, leader is ${hostname()} \\(pid ${a.proc.pid}, fencing token \\d+`));
  assert.match(await (await fetch(`http://${envB.STATUS_ADDR}/`)).text(), /standby, leader is/);
  assert.match(await (await fetch(`http://${envB.STATUS_ADDR}/metrics`)).text(), /^certwrangler_manager_role\{role="standby"\} 1$/m);

  a.proc.kill('SIGSTOP');
  await waitFor('B ready as the leader', b, async () => ((await readyz(envB)).text === 'ready (leader)\n' ? true : undefined));
  assert.equal(ordersIn(b.output()), 0, `the new leader finds every certificate in the store: ${b.output()}`);
  a.proc.kill('SIGCONT');
  const endA = await a.done;
  assert.equal(endA.code, 1);
  assert.match(endA.stdout + endA.stderr, new RegExp(`lost the lock on Redis .*is now held by ${hostname()} \\(pid ${b.proc.pid}.*exiting`));

  // Redis down when a pass starts and back a moment later: the pass waits it out (or fails and the next one
  // reads again); it never takes a certificate it could not read for a missing one, so nothing is ordered, and
  // the leader keeps its lease. (Before, each read failed at once and the three certificates were ordered again.)
  const reconcile = (wait: number) => fetch(`http://${envB.STATUS_ADDR}/api/reconcile?wait=${wait}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  await server.stop();
  assert.equal((await reconcile(0)).status, 202);
  await new Promise((r) => setTimeout(r, 1000));
  await server.start();
  const after = await waitFor('a whole pass after the restart', b, async () => {
    const r = await reconcile(60);
    return r.status === 200 ? ((await r.json()) as { ok: boolean }) : undefined;
  });
  assert.equal(after.ok, true);
  assert.equal(b.proc.exitCode, null, `the leader is still running: ${b.output().slice(-2000)}`);
  assert.equal(ordersIn(b.output()), 0, `no order after the restart either: ${b.output()}`);
  assert.match(server.cli('GET', 'ha:lease'), new RegExp(`"pid":${b.proc.pid}`), 'the leader still holds the lease');

  // Every key in the store matches its certificate (read as a manager reads them, with the key).
  const store = redis.create(redis.fromEnv(envB), { log: createLogger('silent') });
  await store.init();
  try {
    for (const n of NAMES) {
      const [key, cert] = await Promise.all([store.read(`certs/${n}/privkey.pem`), store.read(`certs/${n}/cert.pem`)]);
      assert.ok(key && cert && keyMatchesCert(key, cert), `${n}: the key matches the certificate`);
      assert.match(server.cli('HGET', `ha:store:file:certs/${n}/privkey.pem`, 'data'), /^enc:v1:/, `${n}: the key is sealed at rest`);
    }
  } finally {
    await store.close();
  }
  b.proc.kill('SIGTERM');
  assert.equal((await b.done).code, 0);
});
