import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { budgetRows, checkLimits, checkOrder, emptyLedger, isVerdict, Ledger, registeredDomain, type LedgerData } from '../../src/limits/ledger.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const T0 = new Date('2027-05-01T00:00:00Z');
const H = 3_600_000;
const at = (ms: number) => new Date(T0.getTime() + ms).toISOString();

test('registered domains come from the Public Suffix List, private section included', () => {
  assert.equal(registeredDomain('a.b.example.co.uk'), 'example.co.uk');
  assert.equal(registeredDomain('www.example.com'), 'example.com');
  assert.equal(registeredDomain('*.shop.example.com'), 'example.com');
  assert.equal(registeredDomain('me.github.io'), 'me.github.io');
});

test('50 certificates per registered domain per 7 days: the 51st waits until the oldest leaves the window', () => {
  const d: LedgerData = { ...emptyLedger(), issued: Array.from({ length: 50 }, (_, i) => ({ at: at(i * H), names: [`n${i}.example.com`] })) };
  const now = new Date(T0.getTime() + 60 * H);
  const v = checkLimits(d, ['new.example.com', 'new.other.org'], now)!;
  assert.equal(v.limit, 'certificatesPerRegisteredDomain');
  assert.match(v.message, /50 certificates for example\.com in the last 7 days/);
  assert.equal(v.retryAt.toISOString(), at(7 * 24 * H));
  assert.equal(checkLimits(d, ['new.other.org'], now), undefined, 'another registered domain is not held');
  assert.equal(checkLimits(d, ['new.example.com'], new Date(T0.getTime() + 7 * 24 * H)), undefined, 'a week later it may');
});

test('5 duplicates per exact name set per 7 days, whatever the order or case of the names', () => {
  const d: LedgerData = { ...emptyLedger(), issued: Array.from({ length: 5 }, (_, i) => ({ at: at(i * H), names: ['b.example.com', 'a.example.com'] })) };
  const v = checkLimits(d, ['A.example.com', 'b.example.com'], new Date(T0.getTime() + 10 * H))!;
  assert.equal(v.limit, 'duplicateCertificates');
  assert.equal(checkLimits(d, ['a.example.com'], new Date(T0.getTime() + 10 * H)), undefined, 'a different set is not a duplicate');
});

test('5 failed authorizations per name per hour; 300 new orders per account per 3 hours', () => {
  const fails: LedgerData = { ...emptyLedger(), failedAuthorizations: Array.from({ length: 5 }, (_, i) => ({ at: at(i * 60_000), name: 'bad.example.com' })) };
  const v = checkLimits(fails, ['ok.example.com', 'bad.example.com'], new Date(T0.getTime() + 10 * 60_000))!;
  assert.equal(v.limit, 'failedAuthorizationsPerName');
  assert.equal(v.retryAt.toISOString(), at(H));
  const orders: LedgerData = { ...emptyLedger(), orders: Array.from({ length: 299 }, (_, i) => ({ at: at(i * 1000), names: [`o${i}.example.org`] })) };
  assert.equal(checkLimits(orders, ['x.example.net'], new Date(T0.getTime() + H)), undefined);
  orders.orders.push({ at: at(H), names: ['y.example.net'] });
  assert.equal(checkLimits(orders, ['x.example.net'], new Date(T0.getTime() + H))?.limit, 'newOrdersPerAccount', 'the 300th order holds the 301st');
});

test('ledger: orders in flight count, records survive a new process, the file is 0600, an unreadable ledger stops orders', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-ledger-'));
  let now = T0;
  const clock = () => now;
  const l1 = Ledger.forDirectory(new FilesStore(dir), 'ca', clock);
  const names = ['dup.example.com'];
  const tickets = [];
  for (let i = 0; i < 5; i++) {
    const t = await l1.acquire(names);
    assert.ok(!isVerdict(t), `order ${i + 1} may be made`);
    tickets.push(t);
  }
  const sixth = await l1.acquire(names);
  assert.ok(isVerdict(sixth) && sixth.limit === 'duplicateCertificates', 'five in flight already');
  for (const t of tickets) {
    t.issued();
    await t.done();
  }
  now = new Date(T0.getTime() + H);
  const l2 = Ledger.forDirectory(new FilesStore(dir), 'ca', clock);
  const again = await l2.acquire(names);
  assert.ok(isVerdict(again) && again.limit === 'duplicateCertificates', 'a restart does not forget');
  const file = join(dir, 'ledger', 'ca.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as LedgerData).issued.length, 5);

  const until = await l2.caRateLimited(30 * 60_000, 'too many certificates');
  assert.equal(until.toISOString(), new Date(now.getTime() + 30 * 60_000).toISOString());
  const held = await Ledger.forDirectory(new FilesStore(dir), 'ca', clock).acquire(['fresh.example.net']);
  assert.ok(isVerdict(held) && held.limit === 'caRateLimited' && /too many certificates/.test(held.message));

  mkdirSync(join(dir, 'ledger'), { recursive: true });
  writeFileSync(join(dir, 'ledger', 'broken.json'), '{not json');
  await assert.rejects(Ledger.forDirectory(new FilesStore(dir), 'broken', clock).acquire(names), /rate-limit ledger .*broken\.json is unreadable .*move it aside/);
});

test('ledger: an order that cannot be written down is not made, and leaves nothing counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-ledger-'));
  const l = Ledger.forDirectory(new FilesStore(dir), 'ca', () => T0);
  const first = await l.acquire(['a.example.com']);
  assert.ok(!isVerdict(first));
  await first.done();
  // A file where the ledger's folder was: every write fails from now on, as on a full or read-only volume.
  rmSync(join(dir, 'ledger'), { recursive: true });
  writeFileSync(join(dir, 'ledger'), '');
  await assert.rejects(l.acquire(['a.example.com']), /cannot record the order in the rate-limit ledger .*ca\.json .*no order made/);
  rmSync(join(dir, 'ledger'));
  const t = await l.acquire(['a.example.com']);
  assert.ok(!isVerdict(t));
  await t.done();
  assert.equal((JSON.parse(readFileSync(join(dir, 'ledger', 'ca.json'), 'utf8')) as LedgerData).orders.length, 2, 'the refused order was not counted');
});

test('NEW_ORDER_BUDGET: new certificates from labels or the API stop at 80% of a limit; renewals and DOMAINS may use the rest', async () => {
  // 40 certificates for example.com this week: 80% of Let's Encrypt's 50 per registered domain.
  const d: LedgerData = { ...emptyLedger(), issued: Array.from({ length: 40 }, (_, i) => ({ at: at(i * H), names: [`n${i}.example.com`] })) };
  const now = new Date(T0.getTime() + 50 * H);
  const held = checkOrder(d, ['tenant.example.com'], now, [], 'new', 0.8)!;
  assert.equal(held.limit, 'newOrderBudget');
  assert.match(held.message, /40 certificates for example\.com in the last 7 days \(share of new certificates 40 per registered domain\); .*80% .*NEW_ORDER_BUDGET.*kept for renewals/);
  assert.equal(held.retryAt.toISOString(), at(7 * 24 * H), 'the oldest of the 40 leaving the window lets one more in');
  assert.equal(checkOrder(d, ['renewal.example.com'], now, [], 'reserved', 0.8), undefined, 'a renewal may use the reserve');
  assert.equal(checkOrder(d, ['tenant.example.com'], now, [], 'new', 1), undefined, 'NEW_ORDER_BUDGET=100% keeps nothing back');
  assert.equal(checkOrder(d, ['tenant.other.org'], now, [], 'new', 0.8), undefined, 'another registered domain has its own budget');
  // The reserve itself is still a limit: at 50 even a renewal waits, with the CA's limit named.
  d.issued.push(...Array.from({ length: 10 }, (_, i) => ({ at: at((40 + i) * H), names: [`m${i}.example.com`] })));
  assert.equal(checkOrder(d, ['renewal.example.com'], now, [], 'reserved', 0.8)?.limit, 'certificatesPerRegisteredDomain');

  // Through the ledger: the class is the caller's, and peek answers as acquire would.
  const dir = mkdtempSync(join(tmpdir(), 'cw-ledger-'));
  const l = Ledger.forDirectory(new FilesStore(dir), 'ca', () => T0, 0.5);
  for (let i = 0; i < 2; i++) {
    const t = await l.acquire(['dup.example.com'], { budget: 'new' });
    assert.ok(!isVerdict(t));
    t.issued();
    await t.done();
  }
  assert.equal((await l.peek(['dup.example.com'], { budget: 'new' }))?.limit, 'newOrderBudget', 'half of 5 duplicates is 2');
  const renewal = await l.acquire(['dup.example.com']);
  assert.ok(!isVerdict(renewal), 'a reserved order is not held by the share');
  await renewal.done();
});

test('an order the CA refused at creation is released: it does not count against new orders per account', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-ledger-'));
  const l = Ledger.forDirectory(new FilesStore(dir), 'ca', () => T0);
  const t = await l.acquire(['co.uk']);
  assert.ok(!isVerdict(t));
  t.release();
  await t.done();
  const kept = await l.acquire(['fine.example.com']);
  assert.ok(!isVerdict(kept));
  await kept.done();
  const file = JSON.parse(readFileSync(join(dir, 'ledger', 'ca.json'), 'utf8')) as LedgerData;
  assert.deepEqual(file.orders.map((o) => o.names), [['fine.example.com']]);
});

test('budgets: each limit in use with what is used, what new certificates may use, what is held back and when it refills', () => {
  const d: LedgerData = {
    ...emptyLedger(),
    orders: [{ at: at(0), names: ['a.example.com'] }, { at: at(H), names: ['b.example.com'] }],
    issued: [{ at: at(0), names: ['a.example.com'] }, { at: at(H), names: ['a.example.com'] }, { at: at(2 * H), names: ['b.example.com', 'c.other.org'] }],
    failedAuthorizations: [{ at: at(2 * H), name: 'bad.example.com' }],
  };
  const rows = budgetRows(d, new Date(T0.getTime() + 2.5 * H), 0.8);
  const find = (limit: string, scope: string) => rows.find((r) => r.limit === limit && r.scope === scope);
  assert.deepEqual(find('newOrdersPerAccount', 'account'), { limit: 'newOrdersPerAccount', scope: 'account', used: 2, max: 300, newMax: 240, heldBack: 60, refillsAt: at(3 * H) });
  assert.deepEqual(find('certificatesPerRegisteredDomain', 'example.com'), { limit: 'certificatesPerRegisteredDomain', scope: 'example.com', used: 3, max: 50, newMax: 40, heldBack: 10, refillsAt: at(7 * 24 * H) });
  assert.equal(find('certificatesPerRegisteredDomain', 'other.org')?.used, 1);
  assert.equal(find('duplicateCertificates', 'a.example.com')?.used, 2, 'a set issued twice is shown');
  assert.equal(find('duplicateCertificates', 'b.example.com,c.other.org'), undefined, 'a set issued once is every renewal\'s normal state');
  assert.deepEqual(find('failedAuthorizationsPerName', 'bad.example.com'), { limit: 'failedAuthorizationsPerName', scope: 'bad.example.com', used: 1, max: 5, newMax: 4, heldBack: 1, refillsAt: at(3 * H) });
});
