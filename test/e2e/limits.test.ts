/**
 * Issue 4, rate-limit safety against Pebble: a name that cannot validate is ordered at most once per
 * backoff step over a simulated day, and every pass is a fresh manager (nothing but DATA_DIR carries over).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acmeLab, runCli, passWithOrders, pebbleEnv, type AcmeLab } from '../support/harness.js';
import type { Pebble } from '../support/pebble.js';
import type { LedgerData } from '../../src/limits/ledger.js';

const base = mkdtempSync(join(tmpdir(), 'cw-limits-'));
let lab: AcmeLab;
let pebble: Pebble;

before(async () => {
  lab = acmeLab(base);
  pebble = await lab.pebble('pebble');
  const r = await fetch(`${pebble.dnsManagementUrl}/add-a`, { method: 'POST', body: JSON.stringify({ host: 'cannot.limits-example.com.', addresses: ['127.0.0.2'] }) });
  assert.equal(r.status, 200);
});
after(async () => {
  await lab.stop();
  rmSync(base, { recursive: true, force: true });
});

test('a name that cannot validate: one order per backoff step (0, 1, 3, 7, 15 h) over a simulated day, across restarts', async () => {
  const env = { DOMAINS: 'cannot.limits-example.com;fine.limits-example.com', ...pebbleEnv(pebble, 'production'), ORCHESTRATOR: 'files', DATA_DIR: join(base, 'data'), WEBROOT_DIR: lab.webroot };
  const start = Date.parse('2026-11-23T00:00:00Z') + Math.floor((Date.now() - Date.parse('2026-11-23T00:00:00Z')) / 3_600_000) * 3_600_000;
  const orderHours: number[] = [];
  let fineOrders = 0;
  for (let step = 0; step <= 24 * 4; step++) {
    const now = new Date(start + step * 15 * 60_000);
    // A new manager each time: the backoff and the ledger must come from DATA_DIR.
    const { report } = await passWithOrders(env, { now: () => now });
    const cannot = report.results.find((r) => r.name === 'cannot.limits-example.com')!;
    const fine = report.results.find((r) => r.name === 'fine.limits-example.com')!;
    if (cannot.orders > 0) {
      orderHours.push(step / 4);
      assert.equal(cannot.outcome, 'failed');
      assert.match(cannot.error!, /authorization invalid/);
    } else {
      assert.equal(cannot.outcome, 'waiting', `step ${step}`);
      assert.ok(cannot.nextAttempt && Date.parse(cannot.nextAttempt) > now.getTime());
    }
    fineOrders += fine.orders;
    assert.notEqual(fine.outcome, 'failed', 'the broken name never holds up the other certificate');
  }
  assert.deepEqual(orderHours, [0, 1, 3, 7, 15]);
  assert.equal(fineOrders, 1);
  const ledgerDir = join(base, 'data', 'ledger');
  const ledger = JSON.parse(readFileSync(join(ledgerDir, readdirSync(ledgerDir)[0]!), 'utf8')) as LedgerData;
  assert.ok(ledger.failedAuthorizations.every((f) => f.name === 'cannot.limits-example.com'));
  assert.ok(ledger.failedAuthorizations.length >= 1, 'failed validations are on record');
});

test('the ledger holds an order that would break a limit, says which and when, and makes no order', async () => {
  const env = { DOMAINS: 'dup.limits-example.com', ...pebbleEnv(pebble, 'production'), ORCHESTRATOR: 'files', DATA_DIR: join(base, 'dup'), WEBROOT_DIR: lab.webroot };
  // Six years on, each new Pebble certificate (five years) is already expired: every pass wants a new one,
  // and only the limits stop it.
  const now = Date.now() + 6 * 365 * 24 * 3_600_000;
  let orders = 0;
  let last;
  for (let i = 0; i < 8; i++) {
    const at = new Date(now + i * 60 * 60_000);
    const r = await passWithOrders(env, { now: () => at });
    orders += r.orders;
    last = r.report.results[0]!;
  }
  assert.equal(orders, 5, 'five certificates for the same names, then the duplicate limit holds');
  assert.equal(last!.outcome, 'waiting');
  assert.match(last!.error!, /not ordered: 5 certificates for exactly these names in the last 7 days \(limit 5\)/);
  assert.ok(Date.parse(last!.nextAttempt!) > now + 6 * 24 * 3_600_000);
  // plan says the same before any pass is run, and changes nothing.
  const plan = await runCli(['plan', '--at', new Date(now + 9 * 60 * 60_000).toISOString()], { ...env, LOG_LEVEL: 'silent' });
  assert.equal(plan.code, 0);
  // The gate is the policy's: plan shows the order held ("wait"), with the limit and when it lifts.
  assert.match(plan.stdout, /dup\.limits-example\.com\s+wait\s+expired \S+; not ordered: 5 certificates for exactly these names in the last 7 days \(limit 5\) until \S+/);
  // ...and each budget: used, the share new certificates from labels or the API may use, held back, refill time.
  assert.match(plan.stdout, /budget \(https:\/\/127\.0\.0\.1:\d+\/dir\): certificates for one set of names \(7 days\) for dup\.limits-example\.com: 5 of 5 used, new certificates from labels or the API may use 4, 1 held back for renewals; the oldest leaves the window at \S+/);
  assert.match(plan.stdout, /budget \(\S+\): certificates per registered domain \(7 days\) for limits-example\.com: 5 of 50 used, new certificates from labels or the API may use 40, 10 held back for renewals/);
  assert.equal(last!.outcome, 'waiting');
});
