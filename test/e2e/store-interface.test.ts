/**
 * Issue 20 item 1: everything the manager keeps goes through the Store interface. A Store other than files (an
 * in-memory one, written here as a test double of the interface: it stands for Redis, it mocks no outside
 * system) is handed to a `manager --once` style pass (lock, assemble, runPass) against real Pebble and the
 * Rancher simulator. Every write lands in it, keys marked secret; DATA_DIR is never created; and a fresh manager
 * over the same store (a restart) finds all of it: no new order, no new account, and the pending balancer
 * reload is retried from the store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { lockForManager, type HeldLock, type LockOptions } from '../../src/lock.js';
import { runPass, type PassReport } from '../../src/reconciler.js';
import { countAcmeRequests } from '../../src/acme/transport.js';
import { checkStorePath, type Store, type StoredFile, type WriteOptions } from '../../src/stores/store.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, errors, pebbleEnv } from '../support/harness.js';
import { simPool } from '../support/rancher-sim.js';

/** A Store kept in a Map: every path written, with how it was written, and nothing on disk. */
class MemoryStore implements Store {
  readonly kind = 'memory';
  readonly where = 'the test\'s memory store';
  readonly texts = new Map<string, { data: string; secret: boolean; mode: number | undefined }>();
  /** Every write, in order: [path, secret]. */
  readonly writes: [string, boolean][] = [];
  locks = 0;
  private version = 0;
  private readonly versions = new Map<string, number>();

  async init(): Promise<void> {}
  async read(path: string): Promise<string | undefined> {
    return this.texts.get(checkStorePath(path))?.data;
  }
  async write(path: string, data: string, opts: WriteOptions = {}): Promise<void> {
    this.texts.set(checkStorePath(path), { data, secret: opts.secret === true, mode: opts.mode });
    this.versions.set(path, ++this.version);
    this.writes.push([path, opts.secret === true]);
  }
  async writeSet(dir: string, files: StoredFile[]): Promise<void> {
    for (const f of files) await this.write(`${dir}/${f.name}`, f.data, { ...(f.secret ? { secret: true } : {}), ...(f.mode !== undefined ? { mode: f.mode } : {}) });
  }
  async recover(): Promise<void> {}
  async list(dir: string): Promise<string[]> {
    const prefix = `${checkStorePath(dir)}/`;
    return [...new Set([...this.texts.keys()].filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length).split('/')[0]!))];
  }
  async stamp(path: string): Promise<string | undefined> {
    const v = this.versions.get(checkStorePath(path));
    return v === undefined ? undefined : String(v);
  }
  async remove(path: string): Promise<void> {
    for (const p of [...this.texts.keys()]) if (p === path || p.startsWith(`${path}/`)) this.texts.delete(p);
  }
  async move(from: string, to: string): Promise<void> {
    for (const [p, v] of [...this.texts]) {
      if (p !== from && !p.startsWith(`${from}/`)) continue;
      this.texts.delete(p);
      this.texts.set(to + p.slice(from.length), v);
    }
  }
  async lock(_opts: LockOptions): Promise<HeldLock> {
    this.locks++;
    return { owner: { pid: process.pid, host: 'memory', since: new Date().toISOString() }, release: async () => void this.locks-- };
  }
  async close(): Promise<void> {}
}

const base = mkdtempSync(join(tmpdir(), 'cw-store-interface-'));
const lab = acmeLab(base);
let pebble: Pebble;
const sims = simPool();
const LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

/** One `manager --once` as the CLI runs it: the store's lock, then assemble and a pass over the given store. */
async function once(env: Record<string, string>, store: Store, now?: Date): Promise<{ report: PassReport; orders: number; accounts: number }> {
  const config = loadConfig(env);
  const log = createLogger('silent');
  const lock = await lockForManager(store, config, log, true);
  const counter = countAcmeRequests();
  try {
    const m = await assemble(config, log, { store, retryBaseMs: 50, settleTimeoutMs: 5000, ...(now ? { now: () => now } : {}) });
    const report = await runPass(m);
    await m.events.drain();
    const count = (re: RegExp) => [...counter.counts].filter(([k]) => re.test(k)).reduce((n, [, v]) => n + v, 0);
    return { report, orders: count(/^201 POST \/order-plz$/), accounts: count(/^201 POST \/sign-me-up$/) };
  } finally {
    counter.stop();
    await lock.release();
  }
}

test('a store other than files gets every write of a pass, keys as secrets, and nothing is written under DATA_DIR; a restart finds it all there', async () => {
  const s = await sims.start();
  s.addService({ name: 'blog', labels: { [LABEL]: 'blog.example.com' } });
  const lb = s.addBalancer({ name: 'https-lb', defaultCertificateName: 'mem.example.com' });
  s.failUpdate(lb.id, 1);
  const dataDir = join(base, 'data');
  const env = { ...s.env, DATA_DIR: dataDir, WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', EMAIL: 'ops@example.com', DOMAINS: 'mem.example.com', ALLOWED_DOMAINS: 'example.com', PLACEHOLDERS: 'false', ...pebbleEnv(pebble, 'production') };
  const store = new MemoryStore();

  const first = await once(env, store);
  assert.equal(first.orders, 2, errors(first.report));
  for (const name of ['mem.example.com', 'blog.example.com']) {
    const r = first.report.results.find((x) => x.name === name);
    assert.ok(r?.issued && r.pushed, `${name} issued and pushed: ${errors(first.report)}`);
  }
  assert.equal(existsSync(dataDir), false, 'DATA_DIR is never created: nothing went around the store');

  const written = new Set(store.writes.map(([p]) => p));
  const secret = new Set(store.writes.filter(([, sec]) => sec).map(([p]) => p));
  const accountPath = [...written].find((p) => /^accounts\/[^/]+\/account\.json$/.test(p));
  const ledgerPath = [...written].find((p) => /^ledger\/[^/]+\.json$/.test(p));
  for (const name of ['mem.example.com', 'blog.example.com']) {
    for (const f of ['privkey.pem', 'cert.pem', 'chain.pem', 'fullchain.pem', 'meta.json']) assert.ok(written.has(`certs/${name}/${f}`), `certs/${name}/${f} written to the store`);
    assert.ok(secret.has(`certs/${name}/privkey.pem`), 'the key is written as a secret');
    assert.equal(store.texts.get(`certs/${name}/cert.pem`)?.mode, 0o644, 'certificates keep their readers\' mode on files');
  }
  assert.ok(accountPath && secret.has(accountPath), `the account (its key) is written as a secret: ${[...written].join(' ')}`);
  assert.ok(ledgerPath, 'the rate-limit ledger is in the store');
  for (const p of ['issuers.json', 'label-claims.json', 'rancher-reloads.json']) assert.ok(written.has(p), `${p} is in the store`);
  assert.match(store.texts.get('rancher-reloads.json')!.data, /https-lb/, 'the refused balancer reload is pending in the store');
  assert.equal(store.locks, 0, 'the lock was taken through the store and released');

  // A restart past the reload's backoff (1 min): a fresh manager over the same store orders nothing, registers
  // no account, and retries the reload it finds there.
  const second = await once(env, store, new Date(Date.now() + 2 * 60_000));
  assert.equal(second.orders, 0, errors(second.report));
  assert.equal(second.accounts, 0);
  assert.deepEqual(JSON.parse(store.texts.get('rancher-reloads.json')!.data).pending, [], 'the pending reload was read from the store and done');
  assert.equal(existsSync(dataDir), false);
});
