/**
 * End to end: a balancer reload that does not happen is state (issue 16 item 5). Real Pebble issues, the
 * manager pushes into the Rancher simulator, whose balancers refuse or cannot run their `update` action.
 * What is asserted is what the operator sees: the certificate each balancer serves, the update calls it
 * got, the orders made, the pass report and the log lines.
 *
 * The retries are plain passes at a later `now` (`retry` below), each by a fresh manager on the same DATA_DIR,
 * as after a restart: a pending reload is state on disk, not something one process remembers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore } from '../../src/certs/store.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { runPass, type PassReport } from '../../src/reconciler.js';
import { countAcmeRequests } from '../../src/acme/transport.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, passWithOrders, pebbleEnv, errors } from '../support/harness.js';
import { simPool, type RancherSim, type SimService } from '../support/rancher-sim.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-reloads-'));
const lab = acmeLab(base);
let pebble: Pebble;
const sims = simPool();

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

const MINUTE = 60_000;

function envFor(dir: string, s: RancherSim, domains: string): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', DOMAINS: domains, ...s.env, ...pebbleEnv(pebble, 'production') };
}

/** One pass at `now`, with its orders counted on the wire and its log lines kept. */
async function pass(env: Record<string, string>, now?: Date): Promise<{ report: PassReport; orders: number; log: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const m = await assemble(loadConfig(env), logger, { retryBaseMs: 50, settleTimeoutMs: 5000, ...(now ? { now: () => now } : {}) });
  const counter = countAcmeRequests();
  try {
    const report = await runPass(m);
    await m.events.drain();
    const orders = [...counter.counts].filter(([k]) => k === '201 POST /order-plz').reduce((n, [, v]) => n + v, 0);
    return { report, orders, log: lines };
  } finally {
    counter.stop();
  }
}

/**
 * A plain pass at `now`, by a fresh manager on the same DATA_DIR (as after a restart): it orders nothing, and
 * its `reload` log lines say which pending balancer reloads it retried and how each ended.
 */
async function retry(env: Record<string, string>, now: Date): Promise<{ balancer: string; ok: boolean; message: string }[]> {
  const p = await pass(env, now);
  assert.equal(p.orders, 0, 'a reload is retried without an order');
  return p.log.filter((l) => l.action === 'reload').map((l) => ({ balancer: String(l.balancer), ok: l.ok === true, message: String(l.msg) }));
}

const pendingFile = (env: Record<string, string>) => join(env.DATA_DIR!, 'rancher-reloads.json');
const pendingEntries = (env: Record<string, string>) => (existsSync(pendingFile(env)) ? (JSON.parse(readFileSync(pendingFile(env), 'utf8')) as { pending: { balancerId: string; attempts: number; nextAttempt: string }[] }).pending : []);
const serves = (lb: SimService, s: RancherSim, name: string) => {
  const c = s.certByName(name)!;
  return lb.served.get(c.id) === `${c.cert}\n${c.certChain ?? ''}`;
};

test('a balancer whose update action fails twice, then succeeds: it ends up serving the new certificate, with 0 extra orders', async () => {
  const s = await sims.start();
  const name = 'shop.example.com';
  // No placeholder, so the balancer's first update is the one for the freshly ordered certificate.
  const env: Record<string, string> = { ...envFor('fails-twice', s, name), PLACEHOLDERS: 'false' };
  // rancher-compose's `default_cert: shop.example.com`: bound as soon as the certificate exists.
  const lb = s.addBalancer({ name: 'https-lb', defaultCertificateName: name });
  s.failUpdate(lb.id, 2);

  // A fresh order; Rancher takes the certificate, but the balancer's update is refused.
  const first = await pass(env);
  const t0 = Date.now();
  assert.equal(first.orders, 1);
  assert.equal(first.report.ok, true, errors(first.report));
  const r = first.report.results[0]!;
  assert.equal(r.outcome, 'ok', 'a reload failure after a fresh order is not an order failure');
  assert.equal(r.nextAttempt, undefined, 'no order backoff');
  const status = await new LocalStore(new FilesStore(env.DATA_DIR!)).readStatus(name);
  assert.equal(status.failures ?? 0, 0);
  assert.equal(status.nextAttempt, undefined);
  assert.equal(s.certByName(name)!.state, 'active', 'the certificate is in Rancher');
  assert.equal(lb.updateCalls, 1);
  assert.equal(serves(lb, s, name), false, 'the balancer has not reloaded it yet');
  const pushLine = first.log.find((l) => l.action === 'push');
  assert.match(String(pushLine?.msg), new RegExp(`balancer https-lb \\(${lb.id}\\): reload pending, update action failed: .*409 Conflict`));
  assert.ok(first.log.some((l) => l.level === 'warn' && l.reason === 'ReloadPending' && l.balancer === lb.id), 'a warning names the balancer');
  assert.deepEqual(pendingEntries(env).map((p) => p.balancerId), [lb.id]);
  assert.equal(first.report.wakeAt, pendingEntries(env)[0]!.nextAttempt, 'the manager wakes for the retry, not at its next scheduled pass');
  assert.equal(statSync(pendingFile(env)).mode & 0o777, 0o600);

  // The next pass: the certificate is up to date and nothing is ordered.
  const next = await pass(env);
  assert.equal(next.orders, 0);
  assert.equal(next.report.results[0]!.decision.reason, 'UpToDate');

  // Before its backoff (1 min) has passed, nothing is retried.
  assert.deepEqual(await retry(env, new Date(t0 + 30_000)), []);
  assert.equal(lb.updateCalls, 1);

  // The second attempt is refused too; the next one waits twice as long.
  const second = await retry(env, new Date(t0 + MINUTE));
  assert.deepEqual(second.map((x) => [x.balancer, x.ok]), [[`https-lb (${lb.id})`, false]]);
  assert.match(second[0]!.message, /409 Conflict/);
  assert.equal(lb.updateCalls, 2);
  assert.equal(pendingEntries(env)[0]!.attempts, 2);
  assert.deepEqual(await retry(env, new Date(t0 + 2 * MINUTE)), [], '2 minutes after the second attempt, not 1');
  assert.equal(serves(lb, s, name), false);

  const third = await retry(env, new Date(t0 + 3 * MINUTE));
  assert.deepEqual(third.map((x) => [x.balancer, x.ok]), [[`https-lb (${lb.id})`, true]]);
  assert.equal(lb.updateCalls, 3);
  assert.equal(lb.reloadCount, 1);
  assert.equal(serves(lb, s, name), true, 'the balancer serves the new certificate');
  assert.deepEqual(pendingEntries(env), []);
  assert.deepEqual(await retry(env, new Date(t0 + 2 * 60 * MINUTE)), [], 'nothing left to retry');

  const after = await pass(env);
  assert.equal(after.orders, 0, '0 extra orders');
  assert.equal(lb.updateCalls, 3, 'an up-to-date pass does not reload again');
});

test('a balancer in updating-active is retried later; one in inactive is logged with its state and left alone', async () => {
  const s = await sims.start();
  const name = 'edge.example.com';
  const env = envFor('states', s, name);
  assert.equal((await passWithOrders(env, { settleTimeoutMs: 5000 })).orders, 1);
  const id = s.certByName(name)!.id;
  const busy = s.addBalancer({ name: 'busy-lb', defaultCertificateId: id });
  const off = s.addBalancer({ name: 'off-lb', certificateIds: [id] });
  const fine = s.addBalancer({ name: 'fine-lb', certificateIds: [id] });
  s.setBalancerState(busy.id, 'updating-active');
  s.setBalancerState(off.id, 'inactive');

  // A new name reissues now (a clock moved past the renewal point would make every later pass renew again).
  const env2 = { ...env, DOMAINS: `${name},www.${name}` };
  const renewed = await pass(env2);
  const at = new Date(); // after the pass that recorded the pending reload, so at + 1 min is past its first wait
  assert.equal(renewed.orders, 1);
  assert.equal(renewed.report.ok, true, errors(renewed.report));
  assert.equal(serves(fine, s, name), true, 'an active balancer reloads at once');
  assert.equal(busy.updateCalls, 0, 'a busy balancer is not asked while its process runs');
  assert.equal(off.updateCalls, 0);
  const offLine = renewed.log.find((l) => l.balancer === off.id);
  assert.equal(offLine?.level, 'warn');
  assert.equal(offLine?.state, 'inactive');
  assert.match(String(offLine?.msg), new RegExp(`balancer off-lb \\(${off.id}\\) is inactive: not reloaded and not retried`));
  const busyLine = renewed.log.find((l) => l.balancer === busy.id);
  assert.equal(busyLine?.reason, 'ReloadPending');
  assert.match(String(busyLine?.msg), /has not reloaded the new certificate \(balancer is updating-active\); retried later, without a new order/);
  assert.deepEqual(pendingEntries(env).map((p) => p.balancerId), [busy.id], 'only the busy balancer is pending');

  // Still busy a minute later: pending again, and the inactive one is never tried.
  const still = await retry(env2, new Date(at.getTime() + MINUTE));
  assert.deepEqual(still.map((x) => [x.balancer, x.ok]), [[`busy-lb (${busy.id})`, false]]);
  assert.match(still[0]!.message, /updating-active/);
  assert.equal(busy.updateCalls, 0);

  s.setBalancerState(busy.id, 'active');
  const done = await retry(env2, new Date(at.getTime() + 3 * MINUTE));
  assert.deepEqual(done.map((x) => [x.balancer, x.ok]), [[`busy-lb (${busy.id})`, true]]);
  assert.equal(serves(busy, s, name), true);
  assert.equal(off.updateCalls, 0, 'the inactive balancer is never retried');
  assert.equal(serves(off, s, name), false);
  assert.deepEqual(pendingEntries(env), []);
});
