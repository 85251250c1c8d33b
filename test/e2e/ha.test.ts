/**
 * High availability on one Redis (issue 20 item 6): three real `certwrangler manager` processes (daemon mode,
 * STORE=redis) and two real `certwrangler webroot` processes fed only by Redis (neither has a folder), one real
 * redis-server (append-only, fsync always) and Pebble (PEBBLE_VA_NOSLEEP=1) behind the test CA front, which
 * counts every new-order by name and every certificate issued.
 *
 * Pebble validates HTTP-01 through a fan-out in this file: each validation request is sent to BOTH webroots and
 * both answers are recorded, so "every webroot answers every token" is checked on the tokens of real orders.
 *
 * No name is ordered twice: the order the killed leader had in flight (kept in the store with its key from the
 * moment the CA created it) is carried on by the new leader, and every name gets exactly one certificate.
 */
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyMatchesCert } from '../../src/certs/parse.js';
import { createLogger } from '../../src/log.js';
import { redis as redisEntry } from '../../src/stores/redis/entry.js';
import { parseLease } from '../../src/stores/redis/lease.js';
import type { Store } from '../../src/stores/store.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { startAcmeFront, type AcmeFront } from '../support/acme-front.js';
import { startCli, type CliRun } from '../support/harness.js';
import { rawRequest } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const base = mkdtempSync(join(tmpdir(), 'cw-ha-'));
/**
 * Shorter than the default 15 s (lease.ts), so a takeover is quick; not 2 s: at a load of 15 on 2 cores a
 * leader's event loop stalled past 2 s in its first pass, and it lost the lease to a standby as designed.
 */
const LEASE_TTL = '5s';
/** Issue 20's size for the kill case. */
const FLEET = 20;
/** Generous bounds on waits for a state change, never asserted durations: a stuck run fails instead of hanging. */
const WAIT_MS = 90_000;
/** A case that outlives this fails, naming itself, instead of holding the run (none takes a minute alone). */
const CASE_MS = 5 * 60_000;

let server: RedisServer;
let pebble: Pebble;
let front: AcmeFront;
let fanout: Server;
/** Set by a case: the next validation request is held until the case releases it (a kill mid-validation). */
let holdNext: ((release: () => void) => void) | undefined;
const webroots: { name: string; port: number; run: CliRun }[] = [];
const managers: CliRun[] = [];
/** Every validation request Pebble made, with what each webroot answered. */
const answers: { token: string; byWebroot: { name: string; status: number; body: string }[] }[] = [];

const PREFIX = 'certwrangler:';
const tokenOf = (path: string) => /^\/\.well-known\/acme-challenge\/([^/]+)$/.exec(path)?.[1];

async function startWebroot(name: string): Promise<void> {
  const port = await freePort();
  const run = startCli(['webroot'], { REDIS_URL: server.url, PORT: String(port), WEBROOT_DIR: join(base, `${name}-no-folder`), DATA_DIR: join(base, `${name}-data`), LOG_LEVEL: 'info' });
  webroots.push({ name, port, run });
  await until(`webroot ${name} up`, async () => (await rawRequest(port, '/healthz').catch(() => undefined))?.status === 200, run);
}

/** Pebble's HTTP-01 port: asks both webroots, records both answers, and gives Pebble the first good one. */
async function startFanout(port: number): Promise<Server> {
  const s = createServer((req, res) => {
    const path = req.url ?? '/';
    const hold = tokenOf(path) ? holdNext : undefined;
    if (hold) holdNext = undefined;
    void new Promise<void>((release) => (hold ? hold(release) : release())).then(() => Promise.all(webroots.map(async (w) => ({ name: w.name, ...(await rawRequest(w.port, path).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message), headers: {} }))) }))).then((got) => {
      const token = tokenOf(path);
      if (token) answers.push({ token, byWebroot: got.map((g) => ({ name: g.name, status: g.status, body: g.body.toString() })) });
      const good = got.find((g) => g.status === 200) ?? got[0]!;
      res.writeHead(good.status, { 'content-type': 'text/plain' });
      res.end(good.body);
    }));
  });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  return s;
}

async function until(what: string, check: () => Promise<boolean> | boolean, run?: CliRun, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${run ? `:\n${run.output().slice(-3000)}` : ''}`);
    if (run && run.proc.exitCode !== null) throw new Error(`${what}: the process exited with ${run.proc.exitCode}:\n${run.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

before(async () => {
  const httpPort = await freePort();
  [server, pebble, fanout] = await Promise.all([startRedis(join(base, 'redis')), startPebble({ dir: join(base, 'pebble'), httpPort, nonceReject: 0 }), startFanout(httpPort)]);
  front = await startAcmeFront(pebble);
  await Promise.all([startWebroot('a'), startWebroot('b')]);
});

/**
 * A teardown step bounded in time: a clean-clone `npm test` once hung in this file after every manager and
 * webroot had exited while Redis and Pebble still ran, i.e. in one of these steps. Each now says which step it
 * gave up on instead of holding the whole run.
 */
async function bounded(what: string, step: () => Promise<unknown> | unknown, ms = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  const got = await Promise.race([Promise.resolve().then(step).then(() => 'done' as const), late]).finally(() => clearTimeout(timer));
  if (got === 'late') console.error(`ha.test teardown: ${what} did not finish in ${ms} ms; going on`);
}

after(async () => {
  for (const m of managers) m.proc.kill('SIGKILL');
  for (const w of webroots) w.run.proc.kill('SIGTERM');
  await bounded('the webroots exiting on SIGTERM', async () => {
    await Promise.all(webroots.map((w) => w.run.done));
  });
  for (const w of webroots) w.run.proc.kill('SIGKILL');
  await bounded('the validation fan-out closing', () => new Promise<void>((r) => {
    fanout?.closeAllConnections();
    fanout ? fanout.close(() => r()) : r();
  }));
  await bounded('the CA front closing', () => front?.close());
  await bounded('Pebble stopping', () => pebble?.stop());
  await bounded('Redis stopping', () => server?.stop());
});

const namesFor = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `c${i}.${tag}.ha.example.com`);

async function managerEnv(tag: string, who: number, names: string[], extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    STORE: 'redis',
    REDIS_URL: server.url,
    LEASE_TTL,
    DATA_DIR: join(base, tag, `m${who}`, 'data'),
    CERTS_DIR: join(base, tag, `m${who}`, 'live'),
    // A folder no webroot serves: what Pebble fetches reaches the webroots through Redis alone.
    WEBROOT_DIR: join(base, tag, `m${who}`, 'www'),
    STATUS_ADDR: `127.0.0.1:${await freePort()}`,
    LOG_LEVEL: 'info',
    DOMAINS: names.join(';'),
    ACME_DIRECTORY_URL: front.directoryUrl,
    ACME_CA_BUNDLE: pebble.caBundlePath,
    STAGING: 'false',
    DISCOVERY_INTERVAL: '1s',
    ...extra,
  };
}

async function startManagers(tag: string, n: number, names: string[], extra: Record<string, string> = {}): Promise<{ run: CliRun; env: Record<string, string> }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const env = await managerEnv(tag, i, names, extra);
    const run = startCli(['manager'], env);
    managers.push(run);
    out.push({ run, env });
  }
  return out;
}

const leaseHolder = () => parseLease(server.cli('GET', `${PREFIX}lease`).trim());

/** The manager process holding the lease, once one does. */
async function leader(ms: { run: CliRun }[], not?: CliRun): Promise<CliRun> {
  let found: CliRun | undefined;
  await until('a manager holding the lease', () => {
    const pid = leaseHolder()?.pid;
    found = ms.find((m) => m.run.proc.pid === pid && m.run !== not)?.run;
    return found !== undefined;
  });
  return found!;
}

const readyz = async (env: Record<string, string>) => {
  const r = await fetch(`http://${env.STATUS_ADDR}/readyz`, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, text: await r.text() };
};

async function openStore(): Promise<Store> {
  const store = redisEntry.create(redisEntry.fromEnv({ STORE: 'redis', REDIS_URL: server.url }), { log: createLogger('silent') });
  await store.init();
  return store;
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/**
 * The names whose stored certificate is one the CA issued (not the self-signed placeholder a first pass stores)
 * with a stored key that matches it; returns those certificates by name.
 */
async function storedSets(names: string[]): Promise<Map<string, string>> {
  const store = await openStore();
  try {
    const out = new Map<string, string>();
    for (const n of names) {
      const [key, cert] = await Promise.all([store.read(`certs/${n}/privkey.pem`), store.read(`certs/${n}/cert.pem`)]);
      const fromCa = cert !== undefined && issuedFor(n).some((r) => fingerprint(r.pem) === fingerprint(cert));
      if (key && cert && fromCa && keyMatchesCert(key, cert)) out.set(n, cert);
    }
    return out;
  } finally {
    await store.close();
  }
}

const ordersFor = (name: string) => front.orders.filter((o) => o.identifiers.some((i) => i.value === name)).length;
const issuedFor = (name: string) => [...front.issued.values()].filter((r) => r.names.includes(name));

/** No name got a second certificate; returns the names ordered more than once (abandoned, unfinalized orders). */
function assertNoDuplicates(names: string[]): string[] {
  const reordered = names.filter((n) => ordersFor(n) > 1);
  for (const n of names) {
    assert.equal(issuedFor(n).length, 1, `${n}: exactly one certificate issued (orders for it: ${ordersFor(n)})`);
    assert.ok(ordersFor(n) <= 2, `${n}: ${ordersFor(n)} orders`);
  }
  return reordered;
}

/** Every token Pebble asked for of these names' orders was answered by both webroots, with the same body. */
function assertEveryWebrootAnswered(fromAnswer: number): void {
  const seen = answers.slice(fromAnswer);
  assert.ok(seen.length > 0, 'Pebble validated through the webroots');
  for (const a of seen) {
    for (const w of a.byWebroot) assert.equal(w.status, 200, `webroot ${w.name} answered token ${a.token}: ${w.status} ${w.body}`);
    assert.equal(new Set(a.byWebroot.map((w) => w.body)).size, 1, `both webroots gave the same key authorization for ${a.token}`);
  }
}

/** Stops the case's managers that still run, then empties Redis for the next case (also when a case fails). */
async function endCase(ms: { run: CliRun }[]): Promise<void> {
  for (const m of ms) if (m.run.proc.exitCode === null && m.run.proc.signalCode === null) m.run.proc.kill('SIGKILL');
  // 'close' waits for the output pipes too; a process SIGKILLed is gone once it has exited.
  await bounded("the case's managers exiting", () => Promise.all(ms.map((m) => m.run.done)));
  server.cli('FLUSHDB');
}

let caseManagers: { run: CliRun }[] = [];
afterEach(async () => {
  await endCase(caseManagers);
  caseManagers = [];
});

test(`the leader SIGKILLed in the middle of an order: a standby takes over and finishes all ${FLEET}, no name issued twice, every key matches, both webroots answer every token`, { timeout: CASE_MS }, async () => {
  const names = namesFor('kill', FLEET);
  const fromAnswer = answers.length;
  // One order in flight at a time, so the kill lands on an order the CA has not finalized, by construction:
  // with more in flight, one could be between finalize and download, which no store can save.
  const ms = await startManagers('kill', 3, names, { ACME_CONCURRENCY: '1' });
  caseManagers = ms;
  const first = await leader(ms);
  // The others stand by, naming the leader.
  for (const m of ms.filter((m) => m.run !== first)) {
    await until('a standby saying so on /readyz', async () => (await readyz(m.env)).text.startsWith('standby, leader is'), m.run);
  }
  const ordersBefore = front.orders.length;
  await until('the leader in the middle of its pass', () => front.orders.length >= ordersBefore + FLEET / 4, first);
  // The kill lands while Pebble validates the order in flight: its challenge was answered, so the order is
  // created and kept in the store, and not finalized. The validation is answered once the leader is dead.
  const release = await new Promise<() => void>((r) => (holdNext = r));
  const inFlight = front.orders.at(-1)!.identifiers[0]!.value;
  first.proc.kill('SIGKILL');
  await new Promise((r) => (first.proc.exitCode !== null || first.proc.signalCode !== null ? r(undefined) : first.proc.once('exit', r)));
  release();
  const second = await leader(ms, first);
  const secondEnv = ms.find((m) => m.run === second)!.env;
  await until('the new leader ready after finishing the pass', async () => (await readyz(secondEnv)).text === 'ready (leader)\n', second);
  const sets = await storedSets(names);
  assert.deepEqual(names.filter((n) => !sets.has(n)), [], 'every certificate the CA issued is in the store with a key that matches it');
  const reordered = assertNoDuplicates(names);
  assert.deepEqual(reordered, [], `no name ordered twice: the order in flight at the kill (${inFlight}) was carried on by the new leader`);
  assertEveryWebrootAnswered(fromAnswer);
  // The third still stands by, now naming the new leader.
  const third = ms.find((m) => m.run !== first && m.run !== second)!;
  await until('the third standing by for the new leader', async () => (await readyz(third.env)).text.includes(`pid ${second.proc.pid}`), third.run);
});

/**
 * A name whose HTTP-01 validation the CA ran while Redis was down: both webroots answered 503 (Redis down, no
 * folder), the authorization is invalid, and the manager logs the failure with its next attempt (an hour later,
 * DESIGN §6). Not "retried cleanly" in the issue's sense: see the report of this helper and RELIABILITY.md.
 */
const failedDuringOutage = (ms: { run: CliRun }[], name: string) =>
  ms.some((m) => m.run.output().split('\n').some((l) => l.includes(`"cert":"${name}"`) && l.includes('"level":"error"') && l.includes('returned 503') && l.includes('nextAttempt')));

test('Redis restarted in the middle of a pass: nothing in the store is lost, the pass goes on, no name issued twice; a validation that met the outage is reported with its next attempt', { timeout: CASE_MS }, async () => {
  // 8 names, one order at a time: the restart lands after some are stored and before the rest are ordered.
  const names = namesFor('restart', 8);
  const fromAnswer = answers.length;
  const ms = await startManagers('restart', 2, names, { ACME_CONCURRENCY: '1' });
  caseManagers = ms;
  await leader(ms);
  let stored = new Map<string, string>();
  await until('the leader in the middle of its pass (2 stored)', async () => (stored = await storedSets(names)).size >= 2);
  assert.ok(stored.size < names.length, 'the restart is inside the pass');
  await server.restart();
  // Every name ends up stored by whichever manager leads after the restart, except one whose validation met the
  // outage (at most the one order in flight).
  let after = new Map<string, string>();
  const settled = () => names.every((n) => after.has(n) || failedDuringOutage(ms, n));
  await until('every certificate stored or its failure reported', async () => {
    after = await storedSets(names);
    return settled();
  }).catch((e: Error) => {
    const missing = names.filter((n) => !after.has(n));
    const said = ms.map((m) => m.run.output().split('\n').filter((l) => missing.some((n) => l.includes(n)) || /"level":"(warn|error)"/.test(l)).join('\n'));
    throw new Error(`${e.message}; missing ${missing.join(', ')}; the managers said:\n${said.join('\n---\n')}`);
  });
  for (const [n, cert] of stored) assert.equal(after.get(n), cert, `${n}: what was stored before the restart is still there`);
  const failed = names.filter((n) => !after.has(n));
  assert.ok(failed.length <= 1, `only the order in flight during the outage may fail: ${failed.join(', ')}`);
  for (const n of names.filter((n) => after.has(n))) assert.equal(issuedFor(n).length, 1, `${n}: one certificate issued`);
  for (const n of names) assert.ok(ordersFor(n) <= 1, `${n}: ${ordersFor(n)} orders (none repeated)`);
  // Tokens Pebble asked for while Redis was up were answered by both webroots; the outage's are the 503s above.
  const upAnswers = answers.slice(fromAnswer).filter((a) => a.byWebroot.some((w) => w.status === 200));
  for (const a of upAnswers) assert.ok(a.byWebroot.every((w) => w.status === 200), `both webroots answered ${a.token}`);
  assert.ok(leaseHolder(), 'a manager holds the lease after the restart');
});

test('the leader SIGSTOPped past its lease: a standby takes over; SIGCONT, and the old leader says it lost the lease and exits, its writes refused; the store is the new leader\'s', { timeout: CASE_MS }, async () => {
  const names = namesFor('pause', 6);
  const ms = await startManagers('pause', 2, names, { ACME_CONCURRENCY: '1' });
  caseManagers = ms;
  const first = await leader(ms);
  const ordersBefore = front.orders.length;
  await until('the leader in the middle of its pass', () => front.orders.length >= ordersBefore + 2, first);
  first.proc.kill('SIGSTOP');
  const second = await leader(ms, first);
  const secondEnv = ms.find((m) => m.run === second)!.env;
  await until('the new leader ready after finishing the pass', async () => (await readyz(secondEnv)).text === 'ready (leader)\n', second);
  const before = await storedSets(names);
  assert.equal(before.size, names.length, 'the new leader stored every certificate');
  first.proc.kill('SIGCONT');
  const end = await first.done;
  const out = end.stdout + end.stderr;
  assert.equal(end.code, 1, out);
  assert.match(out, new RegExp(`lost the lock on Redis .*is now held by .*\\(pid ${second.proc.pid}.*exiting`));
  // Whatever the old leader had in hand when it woke (its order, its keep) did not reach the store.
  const after = await storedSets(names);
  assert.deepEqual([...after], [...before], 'the store holds what the new leader wrote');
  assert.equal(leaseHolder()?.pid, second.proc.pid);
});
