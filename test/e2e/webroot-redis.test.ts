/**
 * Every webroot answers every token (issue 20 item 3): two real `certwrangler webroot` processes on one real
 * redis-server, fed by the manager's HTTP-01 solver, and a real issuance from Pebble through the webroot that
 * only Redis feeds. With Redis stopped, a webroot answers from its shared folder, and otherwise 503, with
 * /healthz saying why. The same Redis and Pebble serve the NethServer export (issue 20 item 4), read back the way
 * its consumers read it: `redis-cli HGET … key | base64 -d`, and a `redis-cli SUBSCRIBE` on its event channel.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebrootSolver } from '../../src/acme/http01.js';
import { RedisTokenPublisher, TOKEN_TTL_MS } from '../../src/webroot/token-source.js';
import { redisFromEnv } from '../../src/stores/redis/connection.js';
import { keyMatchesCert } from '../../src/certs/parse.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { errors, pebbleEnv, runCli, startCli, type CliRun } from '../support/harness.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { NethserverOutput } from '../../src/outputs/nethserver/nethserver.js';
import { testCa } from '../support/no-cn.js';
import { Outputs } from '../../src/outputs/outputs.js';
import { assemble, openStore } from '../../src/assemble.js';
import { lockForManager } from '../../src/lock.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { runPass } from '../../src/reconciler.js';
import { countAcmeRequests } from '../../src/acme/transport.js';
import { rawRequest } from '../support/http.js';
import { freePort } from '../support/ports.js';

const base = mkdtempSync(join(tmpdir(), 'cw-webroot-redis-'));
/** The folder webroot A shares with the manager; webroot B has none. */
const shared = join(base, 'shared-www');
/** The manager's own webroot folder, which no webroot serves: what reaches a webroot comes through Redis. */
const managerOnly = join(base, 'manager-www');
let redis: RedisServer;
let pebble: Pebble;
const webroots: { name: string; port: number; run: CliRun }[] = [];
let withFolder: { port: number };
let redisOnly: { port: number };

const newToken = () => randomBytes(16).toString('base64url');
const get = (port: number, path: string) => rawRequest(port, path);
const tokenPath = (t: string) => `/.well-known/acme-challenge/${t}`;

async function startWebroot(name: string, webrootDir: string, port: number): Promise<{ port: number }> {
  const run = startCli(['webroot'], { REDIS_URL: redis.url, PORT: String(port), WEBROOT_DIR: webrootDir, DATA_DIR: join(base, `${name}-data`), LOG_LEVEL: 'info' });
  webroots.push({ name, port, run });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await get(port, '/healthz').then(
      (r) => r.status === 200 && r.body.toString() === 'ok\n',
      () => false,
    );
    if (up) return { port };
    if (Date.now() > deadline || run.proc.exitCode !== null) throw new Error(`webroot ${name} did not start:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits (bounded) until `check` holds: a state change seen from outside, never a duration asserted. */
async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const managerEnv = () => ({ STORE: 'redis', REDIS_URL: redis.url });

before(async () => {
  redis = await startRedis(join(base, 'redis'));
  mkdirSync(join(shared, '.well-known', 'acme-challenge'), { recursive: true });
  const portA = await freePort();
  const portB = await freePort();
  // Pebble validates HTTP-01 on webroot B's port: the webroot with no folder, fed by Redis alone.
  [withFolder, redisOnly, pebble] = await Promise.all([startWebroot('a', shared, portA), startWebroot('b', join(base, 'no-such-folder'), portB), startPebble({ dir: join(base, 'pebble'), httpPort: portB, nonceReject: 0 })]);
});

after(async () => {
  for (const w of webroots) w.run.proc.kill('SIGTERM');
  await Promise.all(webroots.map((w) => w.run.done));
  await pebble?.stop();
  await redis?.stop();
});

function solver(webrootDir = managerOnly): WebrootSolver {
  return new WebrootSolver(webrootDir, new RedisTokenPublisher(redisFromEnv(managerEnv())));
}

test('a token the manager publishes is answered by both webroots, from Redis, with a TTL; cleanup withdraws it', async () => {
  const s = solver();
  try {
    const token = newToken();
    const keyAuth = `${token}.${newToken()}`;
    await s.present('a.example.com', token, keyAuth);
    for (const w of [withFolder, redisOnly]) {
      const r = await get(w.port, tokenPath(token));
      assert.equal(r.status, 200, `webroot on ${w.port}`);
      assert.equal(r.body.toString(), keyAuth);
      assert.equal(r.headers['content-type'], 'text/plain');
    }
    const ttl = Number(redis.cli('PTTL', `certwrangler:token:${token}`).trim());
    assert.ok(ttl > 0 && ttl <= TOKEN_TTL_MS, `PTTL ${ttl}`);
    await s.cleanup('a.example.com', token);
    assert.equal(redis.cli('EXISTS', `certwrangler:token:${token}`).trim(), '0');
    // A hit may be answered from memory for up to a second after it is withdrawn; then it is gone everywhere.
    for (const w of [withFolder, redisOnly]) await until(`${token} gone from ${w.port}`, async () => (await get(w.port, tokenPath(token))).status === 404);
  } finally {
    await s.close();
  }
});

test('a token asked for before it is published is served as soon as it is published (misses are not cached)', async () => {
  const s = solver();
  try {
    const token = newToken();
    for (const w of [withFolder, redisOnly]) assert.equal((await get(w.port, tokenPath(token))).status, 404);
    await s.present('b.example.com', token, `${token}.thumb`);
    for (const w of [withFolder, redisOnly]) {
      const r = await get(w.port, tokenPath(token));
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `${token}.thumb`);
    }
    await s.cleanup('b.example.com', token);
  } finally {
    await s.close();
  }
});

test('the URL pattern still guards Redis: a dotted, encoded or overlong token is 404 and never looked up', async () => {
  redis.cli('SET', 'certwrangler:token:..', 'x');
  redis.cli('SET', `certwrangler:token:${'a'.repeat(256)}`, 'x');
  for (const path of [tokenPath('..'), tokenPath('%2e%2e'), tokenPath('a'.repeat(256)), tokenPath('a/b'), '/.well-known/acme-challenge/']) {
    assert.equal((await get(redisOnly.port, path)).status, 404, path);
  }
});

test('a real HTTP-01 issuance from Pebble, validated through the webroot that only Redis feeds', async () => {
  const env = {
    ...managerEnv(),
    ...pebbleEnv(pebble, 'production'),
    DOMAINS: 'issued.example.com,www.issued.example.com',
    DATA_DIR: join(base, 'mgr', 'data'),
    CERTS_DIR: join(base, 'mgr', 'live'),
    WEBROOT_DIR: managerOnly,
    LOG_LEVEL: 'silent',
  };
  // As `manager --once` does: the store opened, its lease taken (every Redis write checks it), then the pass.
  const config = loadConfig(env);
  const log = createLogger('silent');
  const store = await openStore(config, log);
  const lock = await lockForManager(store, config, log, true);
  const m = await assemble(config, log, { store, retryBaseMs: 50 });
  const counter = countAcmeRequests();
  let report;
  try {
    report = await runPass(m);
    await m.events.drain();
  } finally {
    counter.stop();
    await m.solver.close();
    await lock.release();
    await store.close();
  }
  const orders = counter.counts.get('201 POST /order-plz') ?? 0;
  assert.equal(report.ok, true, errors(report));
  assert.equal(orders, 1);
  const live = join(base, 'mgr', 'live', 'issued.example.com');
  assert.ok(keyMatchesCert(readFileSync(join(live, 'privkey.pem'), 'utf8'), readFileSync(join(live, 'cert.pem'), 'utf8')));
  // Validated, then withdrawn: nothing is left for the TTL to remove.
  assert.equal(redis.cli('--scan', '--pattern', 'certwrangler:token:*').trim().split('\n').filter((k) => k && !k.includes('..') && !k.endsWith('a'.repeat(256))).length, 0);
});

test('Redis stopped: the webroot with a shared folder answers from it; tokens it cannot see, and the webroot without a folder, get 503; /healthz says why', async () => {
  const inFolder = newToken();
  const onlyInRedis = newToken();
  // The manager writes the shared folder and Redis alike; this token reaches webroot A through the folder too.
  const s = solver(shared);
  const other = solver();
  try {
    await s.present('c.example.com', inFolder, `${inFolder}.k`);
    await other.present('d.example.com', onlyInRedis, `${onlyInRedis}.k`);
    await redis.stop();
    await until('webroot A to see Redis gone', async () => (await get(withFolder.port, '/healthz')).body.toString().startsWith('degraded'));
    const healthA = await get(withFolder.port, '/healthz');
    assert.equal(healthA.status, 200, 'a folder still answers: the webroot stays in service');
    assert.match(healthA.body.toString(), /^degraded: Redis is unreachable since \S+; tokens are answered from the shared folder only\n$/);
    const fromFolder = await get(withFolder.port, tokenPath(inFolder));
    assert.equal(fromFolder.status, 200);
    assert.equal(fromFolder.body.toString(), `${inFolder}.k`);
    const unseen = await get(withFolder.port, tokenPath(onlyInRedis));
    assert.equal(unseen.status, 503, 'not 404: the token may be in Redis');
    assert.equal(unseen.headers['retry-after'], '60');

    await until('webroot B to see Redis gone', async () => (await get(redisOnly.port, '/healthz')).status === 503);
    const healthB = await get(redisOnly.port, '/healthz');
    assert.match(healthB.body.toString(), /^unavailable: Redis is unreachable since \S+ and no shared folder is mounted \(WEBROOT_DIR\): every token is answered 503 until Redis is back\n$/);
    assert.doesNotMatch(healthB.body.toString(), /127\.0\.0\.1|redis:\/\//, 'the public port does not say where Redis is');
    for (const t of [inFolder, onlyInRedis, newToken()]) assert.equal((await get(redisOnly.port, tokenPath(t))).status, 503);
    // Anything that is not a token is still a plain 404.
    assert.equal((await get(redisOnly.port, '/favicon.ico')).status, 404);
    const logB = webroots.find((w) => w.name === 'b')!.run.output();
    assert.match(logB, /Redis redis:\/\/127\.0\.0\.1:\d+\/0 unreachable/);

    await redis.start();
    for (const w of [withFolder, redisOnly]) await until(`webroot on ${w.port} back on Redis`, async () => (await get(w.port, '/healthz')).body.toString() === 'ok\n');
    // Redis came back empty (no persistence here): a token published now is answered by both again.
    const again = newToken();
    await other.present('e.example.com', again, `${again}.k`);
    for (const w of [withFolder, redisOnly]) assert.equal((await get(w.port, tokenPath(again))).status, 200);
    await other.cleanup('e.example.com', again);
  } finally {
    await s.cleanupAll();
    await other.cleanupAll();
    await s.close();
    await other.close();
  }
});

/** `redis-cli SUBSCRIBE channel`, as a consumer would run it: the messages it has printed so far. */
async function subscribe(channel: string): Promise<{ messages(): string[]; stop(): void }> {
  const p = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), 'SUBSCRIBE', channel], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b));
  const lines = () => out.split('\n').map((l) => l.trim());
  await until('the subscription', async () => lines().includes('subscribe'));
  return {
    messages: () => lines().flatMap((l, i, all) => (l === 'message' && all[i + 1] === channel && all[i + 2] !== undefined ? [all[i + 2]!] : [])),
    stop: () => p.kill('SIGTERM'),
  };
}

/** What `redis-cli HGET <key> <field> | base64 -d` prints. */
function hgetDecoded(key: string, field: string): string {
  const r = spawnSync('sh', ['-c', `redis-cli -h 127.0.0.1 -p ${redis.port} HGET "$1" "$2" | base64 -d`, 'sh', key, field], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('REDIS_EXPORT=nethserver: after a real issuance each name has its hash (cert and key in base64 PEM, the key the certificate\'s), and certificate-updated is published once per name', async () => {
  const prefix = 'module/traefik1';
  const channel = `${prefix}/event/certificate-updated`;
  const sub = await subscribe(channel);
  try {
    const dir = join(base, 'ns');
    const env = {
      ...managerEnv(),
      ...pebbleEnv(pebble, 'production'),
      REDIS_EXPORT: 'nethserver',
      REDIS_EXPORT_PREFIX: prefix,
      REDIS_EXPORT_NODE: '1',
      DOMAINS: 'ns.example.com,mail.ns.example.com',
      DATA_DIR: join(dir, 'data'),
      CERTS_DIR: join(dir, 'live'),
      WEBROOT_DIR: join(dir, 'www'),
      LOG_LEVEL: 'info',
    };
    const first = await runCli(['manager', '--once'], env);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const live = join(dir, 'live', 'ns.example.com');
    const privkey = readFileSync(join(live, 'privkey.pem'), 'utf8');
    const fullchain = readFileSync(join(live, 'fullchain.pem'), 'utf8');
    for (const name of ['ns.example.com', 'mail.ns.example.com']) {
      const key = hgetDecoded(`${prefix}/certificate/${name}`, 'key');
      const cert = hgetDecoded(`${prefix}/certificate/${name}`, 'cert');
      assert.equal(key, privkey, `${name}: the stored key`);
      assert.equal(cert, fullchain, `${name}: the stored full chain`);
      assert.ok(keyMatchesCert(key, cert), `${name}: the key matches the certificate`);
    }
    assert.doesNotMatch(first.stdout + first.stderr, /BEGIN [A-Z ]*PRIVATE KEY|LS0tLS1CRUdJTi/, 'no key in the log, PEM or base64');
    await until('both events', async () => sub.messages().length >= 2);
    assert.deepEqual(sub.messages().map((m) => JSON.parse(m) as unknown).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
      { domain: 'mail.ns.example.com', node: '1', action: 'created' },
      { domain: 'ns.example.com', node: '1', action: 'created' },
    ]);

    // Nothing more: one event per name, for the real certificate (the placeholder before it is not exported).
    redis.cli('PUBLISH', channel, 'marker');
    await until('the marker', async () => sub.messages().includes('marker'));
    assert.deepEqual(sub.messages().slice(2), ['marker']);
  } finally {
    sub.stop();
  }
});

test('the NethServer export: a placeholder is not exported, a wildcard is written under its literal name, a flushed hash is written again, an unchanged one is not', async () => {
  const certsDir = join(base, 'ns-unit');
  const put = async (n: number, made: { cert: string; key: string }) => {
    const version = `.certwrangler-archive/_.wild.example.com/${n}`;
    mkdirSync(join(certsDir, version), { recursive: true });
    writeFileSync(join(certsDir, version, 'fullchain.pem'), made.cert);
    writeFileSync(join(certsDir, version, 'privkey.pem'), made.key, { mode: 0o600 });
    return { name: '_.wild.example.com', version };
  };
  const out = new NethserverOutput({ connection: redisFromEnv({ REDIS_URL: redis.url }), prefix: 'module/traefik2', node: 'n', certsDir });
  try {
    const placeholder = await put(1, await createSelfSigned(['*.wild.example.com', 'wild.example.com']));
    assert.deepEqual(await out.write([placeholder]), []);
    assert.equal(redis.cli('EXISTS', 'module/traefik2/certificate/*.wild.example.com').trim(), '0');
    const issued = testCa().leaf(['*.wild.example.com', 'wild.example.com']);
    const cert = await put(2, issued);
    assert.deepEqual(await out.write([cert]), ['redis module/traefik2/certificate/*.wild.example.com', 'redis module/traefik2/certificate/wild.example.com']);
    assert.equal(hgetDecoded('module/traefik2/certificate/*.wild.example.com', 'key'), issued.key);
    assert.deepEqual(await out.write([cert]), [], 'unchanged: nothing written');
    // A restarted manager (nothing remembered) compares with Redis and writes nothing either.
    const restarted = new NethserverOutput({ connection: redisFromEnv({ REDIS_URL: redis.url }), prefix: 'module/traefik2', node: 'n', certsDir });
    try {
      assert.deepEqual(await restarted.write([cert]), []);
    } finally {
      await restarted.close();
    }
    redis.cli('DEL', 'module/traefik2/certificate/*.wild.example.com');
    assert.deepEqual(await out.write([cert]), ['redis module/traefik2/certificate/*.wild.example.com'], 'gone from Redis: written again, the other name left alone');
  } finally {
    await out.close();
  }
});

test('the NethServer export with Redis down: the push succeeds with the export pending, and the next pass writes it', async () => {
  const certsDir = join(base, 'ns-down');
  const version = '.certwrangler-archive/down.example.com/1';
  mkdirSync(join(certsDir, version), { recursive: true });
  const issued = testCa().leaf(['down.example.com']);
  writeFileSync(join(certsDir, version, 'fullchain.pem'), issued.cert);
  writeFileSync(join(certsDir, version, 'privkey.pem'), issued.key, { mode: 0o600 });
  const output = new NethserverOutput({ connection: redisFromEnv({ REDIS_URL: redis.url, REDIS_TIMEOUT: '1s' }), prefix: 'module/traefik3', node: 'n', certsDir });
  const outputs = new Outputs([output], createLogger('silent'));
  const cert = { name: 'down.example.com', version };
  try {
    await redis.stop();
    try {
      assert.deepEqual(await outputs.afterPush(cert, issued.cert + issued.key), ['nethserver output files']);
    } finally {
      await redis.start();
    }
    assert.equal(redis.cli('EXISTS', 'module/traefik3/certificate/down.example.com').trim(), '0');
    await outputs.resync([cert], async () => issued.cert + issued.key);
    assert.equal(hgetDecoded('module/traefik3/certificate/down.example.com', 'key'), issued.key);
  } finally {
    await output.close();
  }
});
