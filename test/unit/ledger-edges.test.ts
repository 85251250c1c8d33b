/**
 * Issue 23: each rate limit at its edges. One below a limit orders; at the limit it waits until exactly
 * when the oldest entry leaves the window; an entry exactly one window old no longer counts, one a
 * millisecond younger does. The same for the CA's own rateLimited answer and for the share of new orders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { budgetRows, checkLimits, checkOrder, emptyLedger, isVerdict, Ledger, LE_LIMITS, newOrderLimits, prune, type LedgerData } from '../../src/limits/ledger.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2027-05-01T12:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const repeat = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

function ledger(p: Partial<LedgerData>): LedgerData {
  return { ...emptyLedger(), ...p };
}

test('ledger edge: new orders per account — 299 in 3 hours order, 300 wait until the oldest is 3 hours old; one exactly 3 hours old is out', () => {
  const oldest = HOUR;
  const orders = (n: number, firstAgo = oldest) => repeat(n, (i) => ({ at: ago(i === 0 ? firstAgo : 60_000), names: [`o${i}.example.com`] }));
  assert.equal(checkLimits(ledger({ orders: orders(299) }), ['x.example.com'], NOW), undefined);
  const v = checkLimits(ledger({ orders: orders(300) }), ['x.example.com'], NOW);
  assert.deepEqual(v, { limit: 'newOrdersPerAccount', message: '300 new orders in the last 3 hours (limit 300 per account)', retryAt: new Date(NOW.getTime() - oldest + 3 * HOUR) });
  assert.equal(checkLimits(ledger({ orders: orders(300, 3 * HOUR) }), ['x.example.com'], NOW), undefined, 'exactly one window old: out');
  assert.equal(checkLimits(ledger({ orders: orders(300, 3 * HOUR - 1) }), ['x.example.com'], NOW)?.limit, 'newOrdersPerAccount', 'a millisecond younger: in');
});

test('ledger edge: failed authorizations — 4 in the hour order, the 5th holds that name only, until the oldest is an hour old', () => {
  const fails = (n: number, name: string, firstAgo = 30 * 60_000) => repeat(n, (i) => ({ at: ago(i === 0 ? firstAgo : 60_000), name }));
  assert.equal(checkLimits(ledger({ failedAuthorizations: fails(4, 'f.example.com') }), ['f.example.com'], NOW), undefined);
  const data = ledger({ failedAuthorizations: [...fails(5, 'f.example.com'), ...fails(5, 'other.example.com', HOUR)] });
  assert.deepEqual(checkLimits(data, ['ok.example.com', 'f.example.com'], NOW), { limit: 'failedAuthorizationsPerName', message: 'f.example.com failed validation 5 times in the last hour (limit 5)', retryAt: new Date(NOW.getTime() + 30 * 60_000) });
  assert.equal(checkLimits(data, ['other.example.com'], NOW), undefined, 'failures exactly an hour old: out');
  assert.equal(checkLimits(ledger({ failedAuthorizations: fails(5, 'f.example.com', HOUR - 1) }), ['f.example.com'], NOW)?.limit, 'failedAuthorizationsPerName');
});

test('ledger edge: duplicates — 4 of a set in 7 days order, the 5th waits; the count is of exactly that set, orders in flight included', () => {
  const set = ['a.example.com', 'www.a.example.com'];
  const issued = (n: number, firstAgo = 2 * DAY) => repeat(n, (i) => ({ at: ago(i === 0 ? firstAgo : DAY), names: i % 2 ? set : [...set].reverse() }));
  assert.equal(checkLimits(ledger({ issued: issued(4) }), set, NOW), undefined);
  assert.deepEqual(checkLimits(ledger({ issued: issued(4) }), set, NOW, [set]), { limit: 'duplicateCertificates', message: '5 certificates for exactly these names in the last 7 days (limit 5)', retryAt: new Date(NOW.getTime() + 5 * DAY) }, 'one in flight counts');
  assert.equal(checkLimits(ledger({ issued: issued(5) }), ['a.example.com'], NOW), undefined, 'a subset is another set');
  assert.equal(checkLimits(ledger({ issued: issued(5, 7 * DAY) }), set, NOW), undefined, 'exactly 7 days old: out');
  assert.equal(checkLimits(ledger({ issued: issued(5, 7 * DAY - 1) }), set, NOW)?.limit, 'duplicateCertificates');
});

test('ledger edge: certificates per registered domain — 49 order, the 50th waits; counted by registered domain, wildcards included', () => {
  const issued = (n: number, firstAgo = 3 * DAY) => repeat(n, (i) => ({ at: ago(i === 0 ? firstAgo : DAY), names: [i % 2 ? `*.s${i}.shop.example.co.uk` : `s${i}.shop.example.co.uk`] }));
  assert.equal(checkLimits(ledger({ issued: issued(49) }), ['new.example.co.uk'], NOW), undefined);
  assert.deepEqual(checkLimits(ledger({ issued: issued(50) }), ['new.example.co.uk'], NOW), { limit: 'certificatesPerRegisteredDomain', message: '50 certificates for example.co.uk in the last 7 days (limit 50 per registered domain)', retryAt: new Date(NOW.getTime() + 4 * DAY) });
  assert.equal(checkLimits(ledger({ issued: issued(50) }), ['new.example.com'], NOW), undefined, 'another registered domain');
  assert.equal(checkLimits(ledger({ issued: issued(50, 7 * DAY) }), ['new.example.co.uk'], NOW), undefined);
});

test('ledger edge: the CA\'s rateLimited holds until exactly its time, then no longer', () => {
  const data = ledger({ caLimited: [{ until: new Date(NOW.getTime() + 1).toISOString(), detail: 'too many' }] });
  assert.deepEqual(checkLimits(data, ['x.example.com'], NOW), { limit: 'caRateLimited', message: `the CA answered rateLimited (too many); no order before ${new Date(NOW.getTime() + 1).toISOString()}`, retryAt: new Date(NOW.getTime() + 1) });
  assert.equal(checkLimits(data, ['x.example.com'], new Date(NOW.getTime() + 1)), undefined);
});

test('ledger edge: the share of new orders is the floor of the limit times NEW_ORDER_BUDGET, never below 1; a renewal may use the rest', () => {
  assert.deepEqual(newOrderLimits(0.8), {
    certificatesPerRegisteredDomain: { count: 40, windowMs: 7 * DAY },
    duplicateCertificates: { count: 4, windowMs: 7 * DAY },
    failedAuthorizationsPerName: { count: 4, windowMs: HOUR },
    newOrdersPerAccount: { count: 240, windowMs: 3 * HOUR },
  });
  assert.equal(newOrderLimits(0.01).duplicateCertificates.count, 1);
  const set = ['n.example.com'];
  const data = ledger({ issued: repeat(4, () => ({ at: ago(DAY), names: set })) });
  const held = checkOrder(data, set, NOW, [], 'new', 0.8);
  assert.deepEqual(held, { limit: 'newOrderBudget', message: '4 certificates for exactly these names in the last 7 days (share of new certificates 4); new certificates from labels and the API may use 80% of each limit (NEW_ORDER_BUDGET), the rest is kept for renewals', retryAt: new Date(NOW.getTime() + 6 * DAY) });
  assert.equal(checkOrder(data, set, NOW, [], 'reserved', 0.8), undefined);
  assert.equal(checkOrder(data, set, NOW, [], 'new', 1), undefined, 'NEW_ORDER_BUDGET=1: no share kept back');
  assert.equal(checkOrder(ledger({ issued: repeat(3, () => ({ at: ago(DAY), names: set })) }), set, NOW, [], 'new', 0.8), undefined);
  assert.equal(checkOrder(ledger({ issued: repeat(5, () => ({ at: ago(DAY), names: set })) }), set, NOW, [], 'new', 0.8)?.limit, 'duplicateCertificates', 'the full limit is named first');
});

test('ledger edge: budget rows count what is inside each window, with the share, what is held back and when it refills', () => {
  const data = ledger({
    orders: [{ at: ago(2 * HOUR), names: ['a.example.com'] }, { at: ago(3 * HOUR), names: ['old.example.com'] }],
    issued: [
      { at: ago(2 * DAY), names: ['a.example.com'] },
      { at: ago(DAY), names: ['a.example.com'] },
      { at: ago(DAY), names: ['b.example.org'] },
      { at: ago(7 * DAY), names: ['gone.example.net'] },
    ],
    failedAuthorizations: [{ at: ago(10 * 60_000), name: 'f.example.com' }, { at: ago(HOUR), name: 'gone.example.com' }],
  });
  assert.deepEqual(budgetRows(data, NOW, 0.8), [
    { limit: 'newOrdersPerAccount', scope: 'account', used: 1, max: 300, newMax: 240, heldBack: 60, refillsAt: new Date(NOW.getTime() + HOUR).toISOString() },
    { limit: 'certificatesPerRegisteredDomain', scope: 'example.com', used: 2, max: 50, newMax: 40, heldBack: 10, refillsAt: new Date(NOW.getTime() + 5 * DAY).toISOString() },
    { limit: 'certificatesPerRegisteredDomain', scope: 'example.org', used: 1, max: 50, newMax: 40, heldBack: 10, refillsAt: new Date(NOW.getTime() + 6 * DAY).toISOString() },
    { limit: 'duplicateCertificates', scope: 'a.example.com', used: 2, max: 5, newMax: 4, heldBack: 1, refillsAt: new Date(NOW.getTime() + 5 * DAY).toISOString() },
    { limit: 'failedAuthorizationsPerName', scope: 'f.example.com', used: 1, max: 5, newMax: 4, heldBack: 1, refillsAt: new Date(NOW.getTime() + 50 * 60_000).toISOString() },
  ]);
  assert.deepEqual(budgetRows(data, NOW, 1).map((r) => r.heldBack), [0, 0, 0, 0, 0]);
  assert.deepEqual(budgetRows(emptyLedger(), NOW, 0.8), []);
});

test('ledger edge: pruning keeps exactly what a window can still see', () => {
  const data = ledger({
    orders: [{ at: ago(3 * HOUR), names: ['x'] }, { at: ago(3 * HOUR - 1), names: ['y'] }],
    issued: [{ at: ago(7 * DAY), names: ['x'] }, { at: ago(7 * DAY - 1), names: ['y'] }],
    failedAuthorizations: [{ at: ago(HOUR), name: 'x' }, { at: ago(HOUR - 1), name: 'y' }],
    caLimited: [{ until: NOW.toISOString(), detail: 'x' }, { until: new Date(NOW.getTime() + 1).toISOString(), detail: 'y' }],
  });
  const p = prune(data, NOW);
  assert.deepEqual([p.orders.map((o) => o.names[0]), p.issued.map((i) => i.names[0]), p.failedAuthorizations.map((f) => f.name), p.caLimited.map((c) => c.detail)], [['y'], ['y'], ['y'], ['y']]);
  assert.equal(p.version, 1);
});

test('ledger edge: the CA\'s rateLimited is kept for its Retry-After, an hour without one, at most 7 days', async () => {
  let now = NOW;
  const l = new Ledger(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-ledger-edge-'))), 'l.json', () => now);
  assert.equal((await l.caRateLimited(undefined, 'no header')).getTime(), NOW.getTime() + HOUR);
  assert.equal((await l.caRateLimited(30 * DAY, 'a month')).getTime(), NOW.getTime() + 7 * DAY);
  assert.equal((await l.caRateLimited(90_000, 'short')).getTime(), NOW.getTime() + 90_000);
  const v = await l.peek(['x.example.com']);
  assert.equal(v?.limit, 'caRateLimited');
  now = new Date(NOW.getTime() + 7 * DAY);
  assert.equal(await l.peek(['x.example.com']), undefined);
});

test('ledger edge: a ticket\'s records are written at done(); a release leaves no order; failed names count', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cw-ledger-edge-'));
  const path = join(dataDir, 'dir', 'l.json');
  const l = new Ledger(new FilesStore(dataDir), 'dir/l.json', () => NOW);
  const t = await l.acquire(['t.example.com']);
  assert.ok(!isVerdict(t));
  t.issued();
  t.failedAuthorizations(['t.example.com', 'u.example.com']);
  await t.done();
  const saved = JSON.parse(readFileSync(path, 'utf8')) as LedgerData;
  assert.deepEqual(saved.issued, [{ at: NOW.toISOString(), names: ['t.example.com'] }]);
  assert.deepEqual(saved.failedAuthorizations.map((f) => f.name), ['t.example.com', 'u.example.com']);
  assert.equal(saved.orders.length, 1);
  const r = await l.acquire(['r.example.com']);
  assert.ok(!isVerdict(r));
  r.release();
  r.release();
  await r.done();
  assert.equal((JSON.parse(readFileSync(path, 'utf8')) as LedgerData).orders.length, 1, 'the released order is gone, the first stays');
  assert.equal(LE_LIMITS.duplicateCertificates.count, 5);
});
